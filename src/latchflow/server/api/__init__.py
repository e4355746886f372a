"""The management API under ``/api``: flows, runs, events, connections, catalog and nodes."""
