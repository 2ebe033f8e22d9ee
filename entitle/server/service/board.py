"""Reads the dashboard needs and no RPC offers: contracts searched, filtered and ranked by
% used over 100,000 contracts, a contract's usage per period and its admitted tickets.

The contracts index keeps, per policy revision, each contract's lifecycle and current period,
recomputed only for contracts whose state or period changed since (a heap of the instants at
which each entry goes stale). Ranking by % used reads every non-zero counter in one statement;
that snapshot is reused for RANK_USAGE_SECONDS and refreshed in the background, so a page never
waits on it after the first. The rows of a page are always read fresh (contract_status).
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from entitle.engine.model import Contract, Plan, Policy
from entitle.engine.periods import Period, lifecycle, period_at, period_key, periods_between
from entitle.engine.usage import StaticUsage
from entitle.server.service.contracts import contract_status
from entitle.server.service.ticketsla import ticket_sla
from entitle.server.store import Admission
from entitle.server.store.clocks import StoredEvent
from entitle.v1 import entitle_pb2 as pb

STATES = ("planned", "active", "expiring", "expired", "suspended")
SORTS = ("contract", "customer", "used", "ends")
PAGE_SIZE = 50
MAX_SEARCH = 200
EXPIRING_DAYS = 30  # the expiring window of a plan that declares no days_before_expiry
RANK_USAGE_SECONDS = 5.0  # how old the usage snapshot behind the % used order may be
HISTORY_PERIODS = 12  # periods shown in a contract's usage chart
RANKINGS_KEPT = 16  # orders of recent (filters, sort) kept for their next pages


class BoardQueryError(ValueError):
    """A dashboard query parameter that cannot be used; the message names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class BoardQuery:
    """The contracts page's search, filters, order and page; empty values match everything."""

    search: str = ""  # part of a contract id or customer id, any case
    state: str = ""  # one of STATES; "active" includes "expiring"
    plan_id: str = ""
    sort: str = "contract"  # one of SORTS; "used" is highest % used first
    page: int = 1

    def checked(self) -> BoardQuery:
        if len(self.search) > MAX_SEARCH:
            raise BoardQueryError("q", f"is longer than {MAX_SEARCH} characters")
        if self.state and self.state not in STATES:
            raise BoardQueryError("state", f"must be one of {', '.join(STATES)}")
        if self.sort not in SORTS:
            raise BoardQueryError("sort", f"must be one of {', '.join(SORTS)}")
        if self.page < 1:
            raise BoardQueryError("page", "must be 1 or more")
        return self


@dataclass(frozen=True)
class BoardRow:
    status: pb.ContractStatus  # as GetContractStatus answers it, usage read now
    state: str  # one of STATES


@dataclass(frozen=True)
class BoardPage:
    rows: tuple[BoardRow, ...]
    total: int  # contracts matching the filters
    page: int
    pages: int
    as_of: datetime
    revision: str
    plans: tuple[str, ...]  # every plan id, for the filter
    counts: dict[str, int]  # contracts per state (the whole bundle)


@dataclass(frozen=True)
class PeriodUsage:
    start: datetime
    end: datetime | None
    used: float
    limit: float | None
    current: bool


def expiring_days(plan: Plan) -> int:
    """How long before its end an active contract shows as expiring: the plan's first
    expiry alert (days_before_expiry), else EXPIRING_DAYS."""
    return max(plan.expiry_days) if plan.expiry_days else EXPIRING_DAYS


def board_state(policy: Policy, contract: Contract, at: datetime) -> str:
    """planned | active | expiring | expired | suspended at `at`."""
    return _evaluate(policy, contract, at)[0]


def _evaluate(
    policy: Policy, c: Contract, at: datetime
) -> tuple[str, str | None, datetime | None]:
    """(state, current period key when active, the instant either may change)."""
    if c.suspended:
        return "suspended", None, None
    state = lifecycle(c, at)
    if state == "planned":
        return state, None, c.start_at
    if state == "expired":
        return state, None, None
    plan = policy.plans[c.plan_id]
    period: Period = period_at(plan, c, at)
    changes = [t for t in (period.end, c.end_at) if t is not None]
    if c.end_at is not None:
        expiring_from = c.end_at - timedelta(days=expiring_days(plan))
        if at >= expiring_from:
            state = "expiring"
        else:
            changes.append(expiring_from)
    return state, period_key(period), min(changes) if changes else None


class _Entry:
    __slots__ = ("contract", "ends", "haystack", "key", "stale_at", "state")

    def __init__(self, contract: Contract):
        self.contract = contract
        self.haystack = f"{contract.id}\n{contract.customer}".casefold()
        self.ends = contract.end_at
        self.state = ""
        self.key: str | None = None
        self.stale_at: datetime | None = None


class _Index:
    """One revision's contracts with their state and period at the last instant asked."""

    def __init__(self, policy: Policy, at: datetime):
        self.policy = policy
        self.entries = [_Entry(policy.contracts[cid]) for cid in sorted(policy.contracts)]
        self.generation = 0
        self._build(at)

    def _build(self, at: datetime) -> None:
        self.at = at
        self.heap: list[tuple[datetime, int]] = []
        for i, e in enumerate(self.entries):
            self._update(i, e, at)
        heapq.heapify(self.heap)
        self.generation += 1

    def _update(self, i: int, e: _Entry, at: datetime) -> None:
        e.state, e.key, e.stale_at = _evaluate(self.policy, e.contract, at)
        if e.stale_at is not None:
            self.heap.append((e.stale_at, i))

    def advance(self, at: datetime) -> None:
        """Bring every entry to `at`: only those gone stale are evaluated again."""
        if at < self.at:
            self._build(at)
            return
        self.at = at
        heap = self.heap
        changed = False
        while heap and heap[0][0] <= at:
            _, i = heapq.heappop(heap)
            e = self.entries[i]
            e.state, e.key, e.stale_at = _evaluate(self.policy, e.contract, at)
            if e.stale_at is not None:
                heapq.heappush(heap, (e.stale_at, i))
            changed = True
        if changed:
            self.generation += 1


class ContractBoard:
    """The contracts page of one worker (thread-safe; indexes rebuilt on a new revision)."""

    def __init__(self, store, *, usage_seconds: float | None = None):
        self.store = store
        self.usage_seconds = RANK_USAGE_SECONDS if usage_seconds is None else usage_seconds
        self._lock = threading.Lock()
        self._index: _Index | None = None
        self._usage: dict[tuple[str, str], float] | None = None
        self._usage_read_at = -math.inf
        self._usage_generation = 0
        self._usage_refreshing = False
        self._rankings: OrderedDict[tuple, list[int]] = OrderedDict()

    # -- the index and the usage snapshot ---------------------------------------------------
    def _index_at(self, policy: Policy, at: datetime) -> _Index:
        index = self._index
        if index is None or index.policy is not policy:
            index = self._index = _Index(policy, at)
            self._rankings.clear()
        else:
            index.advance(at)
        return index

    def _ranking_usage(self) -> tuple[dict[tuple[str, str], float], int]:
        """The usage snapshot for ordering: read now the first time, else refreshed aside."""
        if self._usage is None:
            self._read_usage()
        elif (time.monotonic() - self._usage_read_at > self.usage_seconds
              and not self._usage_refreshing):
            self._usage_refreshing = True
            threading.Thread(target=self._read_usage, name="board-usage", daemon=True).start()
        return self._usage or {}, self._usage_generation

    def _read_usage(self) -> None:
        try:
            usage = self.store.current_usage()
            self._usage, self._usage_generation = usage, self._usage_generation + 1
            self._usage_read_at = time.monotonic()
        finally:
            self._usage_refreshing = False

    def warm(self, policy: Policy, at: datetime) -> None:
        """Build the index of `policy` now (a worker does it on start and after a reload)."""
        with self._lock:
            self._index_at(policy, at)
        if self._usage is None:
            self._read_usage()  # the % used order's first snapshot, before anyone asks

    # -- the contracts page -----------------------------------------------------------------
    def page(self, policy: Policy, query: BoardQuery, at: datetime) -> BoardPage:
        query = query.checked()
        with self._lock:
            index = self._index_at(policy, at)
            usage, usage_generation = (
                self._ranking_usage() if query.sort == "used" else ({}, 0)
            )
            order = self._ordered(index, query, usage, usage_generation)
            counts = {s: 0 for s in STATES}
            for e in index.entries:
                counts[e.state] += 1
            pages = max(1, math.ceil(len(order) / PAGE_SIZE))
            first = (min(query.page, pages) - 1) * PAGE_SIZE
            chosen = [index.entries[i] for i in order[first:first + PAGE_SIZE]]
        usage = self._page_usage(chosen)
        rows = tuple(BoardRow(contract_status(policy, usage, e.contract, at), e.state)
                     for e in chosen)
        return BoardPage(
            rows=rows, total=len(order), page=min(query.page, pages), pages=pages, as_of=at,
            revision=policy.revision, plans=tuple(sorted(policy.plans)), counts=counts,
        )

    def _page_usage(self, chosen: list[_Entry]) -> StaticUsage:
        """The usage of a page's rows, read now in one statement (one round trip)."""
        keys = [(e.contract.id, e.key) for e in chosen if e.key is not None]
        return StaticUsage(by_period=dict(zip(keys, self.store.used_many(keys), strict=True)))

    def _ordered(self, index: _Index, query: BoardQuery, usage: dict, usage_gen: int):
        """Entry positions matching the filters, in the query's order (cached per query)."""
        key = (query.search.casefold(), query.state, query.plan_id, query.sort,
               index.generation, usage_gen)
        found = self._rankings.get(key)
        if found is not None:
            self._rankings.move_to_end(key)
            return found
        needle = query.search.casefold()
        wanted = ("active", "expiring") if query.state == "active" else (query.state,)
        plan_id = query.plan_id
        matches = [
            i for i, e in enumerate(index.entries)
            if (not needle or needle in e.haystack)
            and (not query.state or e.state in wanted)
            and (not plan_id or e.contract.plan_id == plan_id)
        ]
        entries = index.entries
        if query.sort == "customer":
            matches.sort(key=lambda i: (entries[i].contract.customer, entries[i].contract.id))
        elif query.sort == "ends":
            far = datetime.max.replace(tzinfo=index.at.tzinfo)
            matches.sort(key=lambda i: (entries[i].ends or far, i))
        elif query.sort == "used":
            plans = index.policy.plans
            matches.sort(key=lambda i: (-_percent(entries[i], plans, usage), i))
        self._rankings[key] = matches
        while len(self._rankings) > RANKINGS_KEPT:
            self._rankings.popitem(last=False)
        return matches

    # -- one contract -----------------------------------------------------------------------
    def usage_history(
        self, policy: Policy, contract: Contract, at: datetime
    ) -> list[PeriodUsage]:
        """The contract's last HISTORY_PERIODS periods up to `at` with the units used in each."""
        plan = policy.plans[contract.plan_id]
        until = min(at, contract.end_at) if contract.end_at else at
        if until <= contract.start_at:
            return []
        periods = periods_between(plan, contract, contract.start_at, until)[-HISTORY_PERIODS:]
        used = self.store.usage_of(contract.id)
        return [
            PeriodUsage(p.start, p.end, used.get(period_key(p), 0.0), plan.limit, p.contains(at))
            for p in periods
        ]

    def admissions(self, contract_id: str, limit: int = 50) -> list[Admission]:
        return self.store.admissions_of(contract_id, limit)


def _percent(e: _Entry, plans, usage: dict) -> float:
    """% used of an entry's current period; -1 (last) when it has no limit or no period."""
    if e.key is None:
        return -1.0
    limit = plans[e.contract.plan_id].limit
    if limit is None:
        return -1.0
    used = usage.get((e.contract.id, e.key), 0.0)
    return 100.0 * used / limit if limit else 100.0


# -- SLA clocks of live tickets ------------------------------------------------------------------
SLA_LISTED = 200  # tickets read for each list of the SLA page


@dataclass(frozen=True)
class SlaOverview:
    at_risk: tuple[pb.TicketSla, ...]  # a clock running (breached ones too): least left first
    paused: tuple[pb.TicketSla, ...]  # a clock paused now
    breached_today: tuple[pb.Alert, ...]  # SLA_BREACHED alerts that occurred since 00:00 UTC


RUNNING = (pb.CLOCK_STATE_RUNNING, pb.CLOCK_STATE_BREACHED)


def _least_left(sla: pb.TicketSla) -> float:
    """Minutes left on the ticket's running clock nearest its due time (negative: overdue)."""
    left = [c.remaining_minutes if c.state == pb.CLOCK_STATE_RUNNING else -c.elapsed_minutes
            for c in sla.clocks if c.state in RUNNING and not c.paused]
    return min(left) if left else math.inf


def sla_overview(sla_clocks, store, alerts: list[pb.Alert], at: datetime) -> SlaOverview:
    """The SLA page's lists, from the SLA_LISTED tickets whose next alert comes soonest and the
    SLA_LISTED quiet ones changed last (bounded reads, both on an index)."""
    def seen(rows) -> list[pb.TicketSla]:
        return [ticket_sla(sla_clocks.evaluate(clock, events, at), event_count=len(events),
                           next_alert_at=clock.next_alert_at, at=at) for clock, events in rows]

    active = seen(store.clocks_page(quiet=False, limit=SLA_LISTED))
    quiet = seen(store.clocks_page(quiet=True, limit=SLA_LISTED))
    at_risk = sorted((s for s in active if _least_left(s) != math.inf), key=_least_left)
    paused = [s for s in active + quiet
              if any(c.state == pb.CLOCK_STATE_PAUSED or c.paused for c in s.clocks)]
    midnight = at.replace(hour=0, minute=0, second=0, microsecond=0)
    today = tuple(a for a in alerts if a.occurred_at.ToDatetime(tzinfo=at.tzinfo) >= midnight)
    return SlaOverview(tuple(at_risk), tuple(paused), today)


def ticket_events(store, ticket_id: str) -> list[StoredEvent]:
    """A live ticket's recorded events in delivery order (its SLA timeline); [] without any."""
    found = store.ticket_clock(ticket_id)
    return [] if found is None else sorted(found[1], key=lambda e: e.at)
