"""Firmware campaigns (issue 15): pure waves, windows and stop rules (``plan``), the store of
campaigns and their devices (``tasks/store/campaigns.py``), creation and operator actions
(``service``), and the job that moves them (``job``)."""
