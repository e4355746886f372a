"""procrastinate's job tables and functions (PostgreSQL only; SQLite has the embedded backend)

Applied as a migration so that it runs once per database, in the same transaction as the
version stamp, under the migration lock: nodes starting together cannot half-apply it. It is the
schema of the installed procrastinate; a later procrastinate upgrade adds a migration that applies
procrastinate's own migration files.

Every run has its own lock, so thousands of queued jobs carry distinct locks; the index on the
lock of waiting and running jobs keeps procrastinate's fetch (which checks each candidate's lock)
at milliseconds instead of a scan per candidate (measured: 160 ms per fetch with 2,000 queued
jobs before the planner's statistics catch up, 13 ms with the index).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    # the driver's own cursor: the schema is many statements, with no parameters to bind
    with bind.connection.dbapi_connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(SchemaManager.get_schema())
    op.execute(
        "CREATE INDEX latchflow_jobs_active_lock ON procrastinate_jobs (lock)"
        " WHERE status IN ('todo', 'doing')"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TABLE IF EXISTS procrastinate_periodic_defers, procrastinate_events CASCADE")
    op.execute("DROP TABLE IF EXISTS procrastinate_jobs, procrastinate_workers CASCADE")
    op.execute("DROP TYPE IF EXISTS procrastinate_job_status, procrastinate_job_event_type CASCADE")
    op.execute("DROP TYPE IF EXISTS procrastinate_job_to_defer_v1 CASCADE")
