"""The database: tables, migrations, and every SQL statement latchflow issues."""
