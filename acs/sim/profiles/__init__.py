"""Vendor profile data (generated JSON) and the script that builds it from the BBF data models.

Rebuild with `python -m acs.sim.profiles.build` (reads ../shared/bbf and ../shared/samples).
"""
