# Sourced by scripts/test: make sure the PostgreSQL the tests use is up, and export its URL.
# In CI (CI=true) its absence is a failure; elsewhere the PostgreSQL tests skip with a notice.
export ENTITLE_TEST_PG="${ENTITLE_TEST_PG:-postgresql://postgres@127.0.0.1:5432/test}"
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    for v in $(ls /etc/postgresql 2>/dev/null); do
      pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
    done
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "PostgreSQL: up at $ENTITLE_TEST_PG"
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL is required in CI and is not running on 127.0.0.1:5432" >&2
  exit 1
else
  echo "NOTICE: PostgreSQL is not running on 127.0.0.1:5432: its tests will be skipped" >&2
  unset ENTITLE_TEST_PG
fi
if [ "${CI:-}" = "true" ]; then export ENTITLE_REQUIRE_PG=1; fi
