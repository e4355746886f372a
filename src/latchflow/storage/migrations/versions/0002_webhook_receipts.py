"""webhook receipts: signed trigger-URL deliveries already seen (replay protection)

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import latchflow.storage.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_receipts",
        sa.Column("flow_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("webhook_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("received_at", latchflow.storage.models.Moment(), nullable=False),
        sa.PrimaryKeyConstraint("flow_id", "webhook_id"),
    )
    with op.batch_alter_table("webhook_receipts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_receipts_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_receipts_received_at"))
    op.drop_table("webhook_receipts")
