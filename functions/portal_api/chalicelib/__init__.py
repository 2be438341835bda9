"""Modules of the portal API next to `app.py` (Chalice packages `app.py` and `chalicelib/` only):
HTTP helpers shared by every route, and the routes of the meter data computed from stored series."""
