"""Benchmarks of the ACS: boot storm, steady state, task round trip, API at scale, baseline."""
