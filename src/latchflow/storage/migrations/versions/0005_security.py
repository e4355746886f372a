"""security: vendor webhook tokens, signing secret rotation, replays answered, scoped API keys

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import latchflow.storage.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("webhook_token_hash", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.add_column(sa.Column("webhook_sources", sa.JSON(), nullable=True))
    with op.batch_alter_table("flows", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("previous_signing_secret", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("previous_secret_until", latchflow.storage.models.Moment(), nullable=True)
        )
    with op.batch_alter_table("webhook_receipts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "scope",
                sqlmodel.sql.sqltypes.AutoString(),
                nullable=False,
                server_default="admin",  # keys made before scopes could do everything
            )
        )
        batch_op.add_column(
            sa.Column("expires_at", latchflow.storage.models.Moment(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("last_used_at", latchflow.storage.models.Moment(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("scope")
    with op.batch_alter_table("webhook_receipts", schema=None) as batch_op:
        batch_op.drop_column("run_id")
    with op.batch_alter_table("flows", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_until")
        batch_op.drop_column("previous_signing_secret")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_column("webhook_sources")
        batch_op.drop_column("webhook_token_hash")
