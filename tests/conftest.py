"""Shared test setup: the `store_url` fixture runs a test against each real store."""

from __future__ import annotations

import os
import sys
import uuid
from urllib.parse import quote

import pytest

PG_ENV = "ENTITLE_TEST_PG"  # set by scripts/postgres.sh when the server is up
REQUIRE_PG_ENV = "ENTITLE_REQUIRE_PG"  # CI: a missing PostgreSQL is a failure, not a skip


def pytest_report_header(config):
    if os.environ.get(PG_ENV):
        return f"PostgreSQL tests: {os.environ[PG_ENV]}"
    return "NOTICE: PostgreSQL tests SKIPPED: ENTITLE_TEST_PG is not set (run scripts/test)"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh, empty store: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'entitle.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        if os.environ.get(REQUIRE_PG_ENV):
            pytest.fail(f"{REQUIRE_PG_ENV} is set but {PG_ENV} is not: PostgreSQL is not up")
        print(f"NOTICE: {request.node.name}: PostgreSQL not available, skipped", file=sys.stderr)
        pytest.skip("PostgreSQL not available (set ENTITLE_TEST_PG)")
    yield from _pg_schema(base)


def _pg_schema(base: str):
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
