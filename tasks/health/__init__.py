"""Health polls: which parameters to read per vendor (checks.json), pure evaluation, the poll job."""
