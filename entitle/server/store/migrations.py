"""Versioned schema of the ledger; applied in order on start, never edited once released."""

from __future__ import annotations

from dataclasses import dataclass

from entitle.server.store.base import StoreError

# Column types that differ between the two databases; everything else is shared SQL.
TYPES = {
    "sqlite": {"blob": "BLOB", "id": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL"},
    "postgresql": {
        "blob": "BYTEA",
        "id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "real": "DOUBLE PRECISION",
    },
}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]

    def sql(self, backend: str) -> list[str]:
        return [s.format(**TYPES[backend]) for s in self.statements]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "usage ledger and alert outbox", (
        # Units used per contract and period: the row the conditional update locks.
        """CREATE TABLE usage_counters (
            contract_id TEXT NOT NULL,
            period_key TEXT NOT NULL,
            used {real} NOT NULL DEFAULT 0,
            PRIMARY KEY (contract_id, period_key)
        )""",
        # One row per admitted ticket, kept after release so a retry stays a duplicate.
        """CREATE TABLE ticket_admissions (
            ticket_id TEXT PRIMARY KEY,
            contract_id TEXT NOT NULL,
            period_key TEXT NOT NULL,
            amount {real} NOT NULL,
            payload {blob} NOT NULL,
            admitted_at TEXT NOT NULL,
            released_at TEXT,
            release_reason TEXT
        )""",
        # Hours and days logged on tickets, exactly once per idempotency key.
        """CREATE TABLE usage_records (
            idempotency_key TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            ticket_id TEXT NOT NULL,
            contract_id TEXT NOT NULL,
            period_key TEXT NOT NULL,
            amount {real} NOT NULL,
            unit TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            released_at TEXT,
            release_reason TEXT
        )""",
        "CREATE INDEX usage_records_ticket ON usage_records (ticket_id)",
        # Every alert key ever emitted: outlives alert retention, so nothing is emitted twice.
        """CREATE TABLE alert_keys (
            dedupe_key TEXT PRIMARY KEY,
            emitted_at TEXT NOT NULL
        )""",
        # The outbox: cursors increase in commit order (writers hold the alert-log lock).
        """CREATE TABLE alerts (
            cursor {id},
            dedupe_key TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            contract_id TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            plan_id TEXT NOT NULL,
            threshold INTEGER NOT NULL,
            period_key TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            emitted_at TEXT NOT NULL,
            body TEXT NOT NULL
        )""",
        "CREATE INDEX alerts_emitted ON alerts (emitted_at)",
        # Who runs a singleton task (the alert sweeper) until when.
        """CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            expires_at TEXT NOT NULL
        )""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    )),
    Migration(2, "accepted policy bundles", (
        # Bundles workers applied, newest last: the baseline a starting worker checks the
        # bundle on disk against, so a refused breaking change stays refused after restarts.
        """CREATE TABLE policy_bundles (
            seq {id},
            revision TEXT NOT NULL,
            bundle {blob} NOT NULL,
            accepted_at TEXT NOT NULL
        )""",
    )),
    Migration(3, "SLA clocks of admitted tickets", (
        # Clock terms pinned at admission (targets of every priority, calendars, pause
        # statuses, warn_at, revision), kept once per content hash: many tickets share one.
        """CREATE TABLE sla_terms (
            terms_id TEXT PRIMARY KEY,
            terms TEXT NOT NULL,
            stored_at TEXT NOT NULL
        )""",
        # One row per admitted ticket with an SLA, created in the admission's transaction.
        # version moves with every RecordTicketEvents; next_alert_at is when the sweeper
        # must look at the ticket again (NULL: every clock paused or stopped).
        """CREATE TABLE ticket_clocks (
            ticket_id TEXT PRIMARY KEY,
            contract_id TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            plan_id TEXT NOT NULL,
            product TEXT NOT NULL,
            terms_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            priority TEXT NOT NULL,
            event_count INTEGER NOT NULL,
            version INTEGER NOT NULL,
            next_alert_at TEXT,
            alerted TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX ticket_clocks_next_alert ON ticket_clocks (next_alert_at) "
        "WHERE next_alert_at IS NOT NULL",
        # A ticket's events, once per event id; seq is the delivery order.
        """CREATE TABLE ticket_events (
            ticket_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            at TEXT NOT NULL,
            status TEXT,
            priority TEXT,
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (ticket_id, event_id)
        )""",
    )),
    Migration(4, "dashboard reads", (
        # The dashboard's contract page lists a contract's admitted tickets, newest first.
        "CREATE INDEX ticket_admissions_contract ON ticket_admissions (contract_id, admitted_at)",
        # Its SLA page lists quiet tickets (every clock paused or stopped), newest change first.
        "CREATE INDEX ticket_clocks_quiet ON ticket_clocks (updated_at) "
        "WHERE next_alert_at IS NULL",
    )),
    Migration(5, "SLA clocks end with released tickets", (
        # Set by ReleaseUsage in the release's transaction: every open clock of the ticket
        # is cancelled then, next_alert_at is cleared and no event is recorded after it.
        "ALTER TABLE ticket_clocks ADD COLUMN cancelled_at TEXT",
    )),
    Migration(6, "webhook delivery progress", (
        # One row per webhook endpoint (`entitle serve --webhooks`): alerts up to `cursor`
        # are done; the cursor moves only after a 2xx (or a dead letter), by compare-and-set.
        """CREATE TABLE webhook_endpoints (
            endpoint_id TEXT PRIMARY KEY,
            cursor BIGINT NOT NULL,
            attempt_cursor BIGINT NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            last_error TEXT NOT NULL DEFAULT '',
            last_error_at TEXT,
            delivered BIGINT NOT NULL DEFAULT 0,
            dead_letters BIGINT NOT NULL DEFAULT 0,
            last_delivered_at TEXT,
            created_at TEXT NOT NULL
        )""",
        # Alerts an endpoint never accepted within its attempts, with the body that was sent.
        """CREATE TABLE webhook_dead_letters (
            endpoint_id TEXT NOT NULL,
            cursor BIGINT NOT NULL,
            attempts INTEGER NOT NULL,
            last_error TEXT NOT NULL,
            dead_at TEXT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (endpoint_id, cursor)
        )""",
    )),
)

LATEST = MIGRATIONS[-1].version


def check_readable(version: int) -> None:
    """Refuse a ledger at another schema version than this code's: a reader must not guess."""
    if version == 0:
        raise StoreError(
            "it holds no entitle ledger (never migrated): check the URL, or start "
            "`entitle serve` on it once to create the ledger"
        )
    if version < LATEST:
        raise StoreError(
            f"its schema is version {version}, older than this entitle's ({LATEST}): start "
            "`entitle serve` of this version on it to migrate it"
        )
    if version > LATEST:
        raise StoreError(
            f"its schema is version {version}, newer than this entitle knows ({LATEST}): "
            "upgrade entitle"
        )
