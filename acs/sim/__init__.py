"""Fleet simulator: many simulated CPEs that talk CWMP to an ACS (`acs sim`)."""
