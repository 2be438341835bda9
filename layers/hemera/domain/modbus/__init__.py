"""Modbus register maps and their pure codec (bytes in, values out; no transport)."""
