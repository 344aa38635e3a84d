"""MongoDB storage: one repository per collection, each owning its queries and indexes.

It sits in ``tasks/`` because the task queue and the scheduled jobs are its first users and
``acs/`` sits above both (see ARCHITECTURE.md, "Layers").
"""
