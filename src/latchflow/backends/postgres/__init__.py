"""The PostgreSQL backend: several nodes on one database, dispatching through procrastinate."""
