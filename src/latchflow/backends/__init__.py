"""Where work comes from: the embedded backend (SQLite) or the PostgreSQL backend (procrastinate)."""
