"""What the usage ledger promises, whatever database keeps it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from entitle.server.store.clocks import (
        Assess,
        ClockUpdate,
        EventsRecorded,
        NewClock,
        StoredClock,
        StoredEvent,
    )

# Floating-point slack when comparing hours and days against a limit (0.1 + 0.2 > 0.3).
EPSILON = 1e-9


class StoreError(RuntimeError):
    """The store cannot be opened or used as configured (bad URL, newer schema)."""


class StoreUnavailable(RuntimeError):
    """The database did not answer (down, locked too long): the call may be retried."""


class ValueNotStorable(ValueError):
    """The database cannot hold a value the call passed (NUL in PostgreSQL text, an integer
    past 64 bits, text that is not Unicode): the caller's data is at fault, not the store."""


@dataclass(frozen=True)
class TicketUsage:
    """What the ledger holds for a ticket: its admission (if any) and its recorded usage."""

    ticket_id: str
    contract_id: str
    admitted: bool
    payload: bytes | None  # the decision returned when the ticket was admitted
    released: bool


@dataclass(frozen=True)
class AdmitResult:
    status: Literal["admitted", "exhausted", "duplicate"]
    payload: bytes | None = None  # the decision kept for retries (admitted and duplicate)
    used: float = 0.0  # for admissions: the period's usage after this one


@dataclass(frozen=True)
class RecordResult:
    status: Literal["recorded", "duplicate", "conflict"]


@dataclass(frozen=True)
class UsageChange:
    """A committed-with-its-alerts change of one period's counter."""

    contract_id: str
    period_key: str
    before: float
    after: float
    at: datetime


@dataclass(frozen=True)
class NewAlert:
    """An alert to append; `dedupe_key` makes it exactly-once across processes and restarts."""

    dedupe_key: str
    kind: str
    contract_id: str
    customer_id: str
    plan_id: str
    occurred_at: datetime
    threshold: int = 0
    period_key: str = ""
    body: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StoredAlert:
    cursor: int
    dedupe_key: str
    kind: str
    contract_id: str
    customer_id: str
    plan_id: str
    occurred_at: datetime
    emitted_at: datetime
    threshold: int
    period_key: str
    body: dict


@dataclass(frozen=True)
class Admission:
    """One ticket admitted on a contract, as the ledger keeps it."""

    ticket_id: str
    period_key: str
    amount: float
    admitted_at: datetime
    released_at: datetime | None
    release_reason: str | None


@dataclass(frozen=True)
class AlertQuery:
    """Which alerts to read; empty filters match everything."""

    after_cursor: int = 0
    limit: int = 100
    kinds: tuple[str, ...] = ()
    customer_id: str = ""
    contract_id: str = ""


@dataclass(frozen=True)
class WebhookProgress:
    """Where delivery to one webhook endpoint stands (kept in the store, shared by replicas)."""

    endpoint_id: str
    cursor: int  # every alert up to this cursor is done: delivered, dead-lettered or filtered out
    attempt_cursor: int  # the alert the failed `attempts` were made for (0: none)
    attempts: int
    next_attempt_at: datetime | None  # no attempt before this instant (back-off)
    last_error: str
    last_error_at: datetime | None
    delivered: int  # alerts answered 2xx, in total
    dead_letters: int  # alerts given up on, in total (rows of webhook_dead_letters)
    last_delivered_at: datetime | None


@dataclass(frozen=True)
class DeadLetter:
    """An alert delivery gave up on after its last attempt; the body is the one sent."""

    endpoint_id: str
    cursor: int
    attempts: int
    last_error: str
    dead_at: datetime
    body: str


# Called inside the usage transaction; the alerts it returns commit (or roll back) with it.
AlertHook = Callable[[UsageChange], Iterable[NewAlert]]


class Store(Protocol):
    """The one storage interface; SQLite and PostgreSQL implement it with the same SQL."""

    backend: str

    def used(self, contract_id: str, period_key: str) -> float: ...

    def used_many(self, keys: Sequence[tuple[str, str]]) -> list[float]: ...

    def usage_of(self, contract_id: str) -> dict[str, float]: ...

    def current_usage(self) -> dict[tuple[str, str], float]: ...

    def admissions_of(self, contract_id: str, limit: int) -> list[Admission]: ...

    def ticket_usage(self, ticket_id: str) -> TicketUsage | None: ...

    def admission_view(
        self, ticket_id: str, keys: Sequence[tuple[str, str]]
    ) -> tuple[bytes | None, list[float]]: ...

    def admit(
        self, ticket_id: str, contract_id: str, period_key: str, *, amount: float,
        limit: float | None, allow_over: bool, answer: Callable[[float], bytes], at: datetime,
        on_commit_alerts: AlertHook | None = None, clock: NewClock | None = None,
    ) -> AdmitResult: ...

    def record(
        self, key: str, *, ticket_id: str, contract_id: str, period_key: str, amount: float,
        unit: str, at: datetime, on_commit_alerts: AlertHook | None = None,
        now: datetime | None = None, at_sent: bool = True,
    ) -> RecordResult: ...

    def release(self, ticket_id: str, *, reason: str, at: datetime) -> dict[str, float]: ...

    def append_alerts(self, alerts: Iterable[NewAlert], emitted_at: datetime) -> list[int]: ...

    def alerts(self, query: AlertQuery) -> tuple[list[StoredAlert], int, bool]: ...

    def recent_alerts(self, query: AlertQuery, before_cursor: int = 0) -> list[StoredAlert]: ...

    def latest_cursor(self) -> int: ...

    def purge_alerts(self, emitted_before: datetime) -> int: ...

    def try_lease(self, name: str, holder: str, now: datetime, seconds: float) -> bool: ...

    def get_meta(self, key: str) -> str | None: ...

    # webhook delivery progress (entitle/server/webhooks): compare-and-set on the cursor
    def webhook_progress(
        self, endpoint_id: str, *, start_cursor: int, at: datetime
    ) -> WebhookProgress: ...

    def webhook_progress_of(self, endpoint_ids: Sequence[str]) -> dict[str, WebhookProgress]: ...

    def webhook_advance(
        self, endpoint_id: str, from_cursor: int, to_cursor: int, *, delivered: bool,
        at: datetime,
    ) -> bool: ...

    def webhook_failed(
        self, endpoint_id: str, cursor: int, alert_cursor: int, *, attempts: int, error: str,
        at: datetime, next_attempt_at: datetime,
    ) -> bool: ...

    def webhook_dead_letter(
        self, endpoint_id: str, from_cursor: int, alert_cursor: int, *, attempts: int,
        error: str, body: str, at: datetime,
    ) -> bool: ...

    def webhook_dead_letters(self, endpoint_id: str, limit: int = 100) -> list[DeadLetter]: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def accepted_revision(self) -> str | None: ...

    def bundle_of(self, revision: str) -> bytes | None: ...

    def accept_bundle(self, revision: str, bundle: bytes, at: datetime) -> None: ...

    def schema_version(self) -> int: ...

    # SLA clocks of admitted tickets (store/clocks.py)
    def put_terms(self, terms_id: str, terms_json: str, at: datetime) -> None: ...

    def terms(self, terms_id: str) -> str | None: ...

    def ticket_clock(self, ticket_id: str) -> tuple[StoredClock, list[StoredEvent]] | None: ...

    def due_clocks(self, now: datetime, limit: int
                   ) -> list[tuple[StoredClock, list[StoredEvent]]]: ...

    def clocks_page(self, *, quiet: bool, limit: int
                    ) -> list[tuple[StoredClock, list[StoredEvent]]]: ...

    def record_ticket_events(
        self, ticket_id: str, events: Sequence[StoredEvent], *, max_events: int,
        now: datetime, assess: Assess,
    ) -> EventsRecorded | None: ...

    def apply_sweep(self, updates: Sequence[tuple[StoredClock, ClockUpdate]],
                    now: datetime) -> int: ...

    def close(self) -> None: ...


def redact(url: str) -> str:
    """A store URL fit for logs and errors: its password replaced."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in creds:
        return url
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"


def to_text(at: datetime) -> str:
    """Instants as fixed-width UTC text: sortable as strings in both databases."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_text(text: str) -> datetime:
    """to_text's inverse (fromisoformat: some 20x faster than strptime, it matters per row)."""
    return datetime.fromisoformat(text).astimezone(UTC)
