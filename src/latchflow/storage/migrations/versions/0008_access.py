"""access grants: people, places, grants, credentials; the audit record as a hash chain

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import latchflow.storage.models
from latchflow.storage.audit import GENESIS, chain_hash

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT = sqlmodel.sql.sqltypes.AutoString
MOMENT = latchflow.storage.models.Moment


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", TEXT(), nullable=False),
        sa.Column("name", TEXT(), nullable=False),
        sa.Column("phone", TEXT(), nullable=True),
        sa.Column("email", TEXT(), nullable=True),
        sa.Column("reference", TEXT(), nullable=True),
        sa.Column("created_at", MOMENT(), nullable=False),
        sa.Column("updated_at", MOMENT(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    op.create_table(
        "places",
        sa.Column("id", TEXT(), nullable=False),
        sa.Column("name", TEXT(), nullable=False),
        sa.Column("description", TEXT(), nullable=True),
        sa.Column("timezone", TEXT(), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("created_at", MOMENT(), nullable=False),
        sa.Column("updated_at", MOMENT(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "grants",
        sa.Column("id", TEXT(), nullable=False),
        sa.Column("person_id", TEXT(), nullable=False),
        sa.Column("places", sa.JSON(), nullable=False),
        sa.Column("starts_at", MOMENT(), nullable=False),
        sa.Column("ends_at", MOMENT(), nullable=False),
        sa.Column("timezone", TEXT(), nullable=False),
        sa.Column("weekly", sa.JSON(), nullable=True),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("reference", TEXT(), nullable=True),
        sa.Column("state", TEXT(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", MOMENT(), nullable=False),
        sa.Column("updated_at", MOMENT(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    op.create_index("ix_grants_person_id", "grants", ["person_id"])
    op.create_table(
        "credentials",
        sa.Column("id", TEXT(), nullable=False),
        sa.Column("grant_id", TEXT(), nullable=False),
        sa.Column("place_id", TEXT(), nullable=False),
        sa.Column("connection_id", TEXT(), nullable=False),
        sa.Column("resource_kind", TEXT(), nullable=False),
        sa.Column("resource", TEXT(), nullable=False),
        sa.Column("kind", TEXT(), nullable=False),
        sa.Column("state", TEXT(), nullable=False),
        sa.Column("wanted", sa.Boolean(), nullable=False),
        sa.Column("vendor_ids", sa.JSON(), nullable=True),
        sa.Column("secret_sealed", TEXT(), nullable=True),
        sa.Column("starts_at", MOMENT(), nullable=True),
        sa.Column("ends_at", MOMENT(), nullable=True),
        sa.Column("vendor_status", TEXT(), nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=True),
        sa.Column("issues", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", TEXT(), nullable=True),
        sa.Column("last_verified_at", MOMENT(), nullable=True),
        sa.Column("revoke_requested_at", MOMENT(), nullable=True),
        sa.Column("overdue_reported", sa.Boolean(), nullable=False),
        sa.Column("lease_run", TEXT(), nullable=True),
        sa.Column("lease_until", MOMENT(), nullable=True),
        sa.Column("created_at", MOMENT(), nullable=False),
        sa.Column("updated_at", MOMENT(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "grant_id", "connection_id", "resource_kind", "resource", name="uq_credentials_target"
        ),
    )
    op.create_index("ix_credentials_grant_id", "credentials", ["grant_id"])
    op.create_index("ix_credentials_connection_id", "credentials", ["connection_id"])
    op.create_index("ix_credentials_state", "credentials", ["state"])
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("hash", TEXT(), nullable=True))
    _chain_existing_entries()
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("hash", existing_type=TEXT(), nullable=False)
        batch_op.create_unique_constraint("uq_audit_events_seq", ["seq"])


def _chain_existing_entries() -> None:
    table = sa.table(
        "audit_events",
        sa.column("id", TEXT()),
        sa.column("seq", sa.Integer()),
        sa.column("at", MOMENT()),
        sa.column("actor", TEXT()),
        sa.column("action", TEXT()),
        sa.column("subject", TEXT()),
        sa.column("detail", sa.JSON()),
        sa.column("hash", TEXT()),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(table).order_by(table.c.at, table.c.id)).mappings().all()
    previous = GENESIS
    for seq, row in enumerate(rows, start=1):
        entry = {**row, "seq": seq}
        previous = chain_hash(previous, entry)
        bind.execute(table.update().where(table.c.id == row["id"]).values(seq=seq, hash=previous))


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_audit_events_seq", type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("seq")
    op.drop_table("credentials")
    op.drop_index("ix_grants_person_id", "grants")
    op.drop_table("grants")
    op.drop_table("places")
    op.drop_table("people")
