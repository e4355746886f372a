"""Fresh PostgreSQL databases for tests: each test gets its own, dropped afterwards.

Tests that need PostgreSQL skip with a message when the server is unreachable, unless
``LATCHFLOW_REQUIRE_POSTGRES=1`` (CI sets it), which makes them fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

SERVER = os.environ.get("LATCHFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_ENV = "LATCHFLOW_REQUIRE_POSTGRES"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL at {SERVER} is unreachable ({exc}); set LATCHFLOW_TEST_POSTGRES"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_ENV}=1 requires it)")
        pytest.skip(message)


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create ``lf_<random>`` and yield its SQLAlchemy URL; drop it afterwards."""
    name = f"lf_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f"CREATE DATABASE {name}")
    base = SERVER.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with _admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
