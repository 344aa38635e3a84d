"""Incidents: devices that go wrong together, grouped by what they share (pure ``grouping``, ``job``)."""
