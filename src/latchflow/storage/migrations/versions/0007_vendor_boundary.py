"""vendor boundary: dropped vendor events (no flow, the vendor's own type), connection holds,
runs' replays

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import latchflow.storage.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.alter_column("flow_id", existing_type=sa.VARCHAR(), nullable=True)
        batch_op.add_column(
            sa.Column("connection_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("vendor_type", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replays", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "connection_holds",
        sa.Column("connection_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("until", latchflow.storage.models.Moment(), nullable=False),
        sa.Column("opened", sa.Integer(), nullable=False),
        sa.Column("probe_until", latchflow.storage.models.Moment(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("connection_id"),
    )


def downgrade() -> None:
    op.drop_table("connection_holds")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("replays")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("vendor_type")
        batch_op.drop_column("connection_id")
        batch_op.alter_column("flow_id", existing_type=sa.VARCHAR(), nullable=False)
