"""Billing of C&I (Group A) meters: time-of-use calendars (`tou`), billing cycles (`cycle`) and
the billing determinants of a cycle (`determinants`), computed from the final (VEE'd) series.

Pure domain: no AWS library, no I/O. Prices stay in the tenant's tariff data; this package
computes the quantities (kWh, kW, kvarh) a bill multiplies them by.
"""
