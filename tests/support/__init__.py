"""Shared test helpers: the database server for tests (mongo.py) and child processes (processes.py)."""
