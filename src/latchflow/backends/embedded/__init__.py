"""The embedded backend: one node on SQLite, its dispatcher, its clock and its run processes."""
