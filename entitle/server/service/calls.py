"""What each EntitlementService call does, once: requests checked, mapped to the engine,
the store and reload. Faces (gRPC, HTTP, the dashboard) only translate to and from these."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Protocol

from entitle import __version__
from entitle.engine.clocks import History
from entitle.engine.decide import quota_for
from entitle.engine.model import Contract, Policy
from entitle.engine.periods import lifecycle, period_at, period_key
from entitle.engine.ticket import MAX_FUTURE_SKEW, TicketError
from entitle.server import metrics
from entitle.server.logs import REQUEST_ID
from entitle.server.reload import APPLIED
from entitle.server.runtime import Runtime
from entitle.server.service.admission import check_coverage
from entitle.server.service.alertlog import AlertService, kinds_in
from entitle.server.service.contracts import ContractFilter, contract_status, select_contracts
from entitle.server.service.edge import check_request
from entitle.server.service.failures import (
    Code,
    Failure,
    classify,
    invalid,
    not_found,
    ticket_failure,
)
from entitle.server.service.pages import (
    PageTokenError,
    decode_page_token,
    encode_page_token,
    page_size,
    query_fingerprint,
)
from entitle.server.service.ticketsla import get_ticket_sla, record_events, record_ticket_events
from entitle.server.service.wire import (
    LIFECYCLES,
    instant,
    quota_to_proto,
    ticket_from_proto,
    timestamp,
)
from entitle.server.slaclocks import MAX_EVENTS_PER_CALL
from entitle.server.snapshots import NoPolicyLoaded
from entitle.v1 import entitle_pb2 as pb

STATES = {value: name for name, value in LIFECYCLES.items()}
# One record's hours or days; more is a typo (or an attack on the counters), not work done.
MAX_RECORD_AMOUNT = 1_000_000


def _required(field: str, value: str) -> str:
    """A string the call needs (its characters and length were checked at the edge)."""
    if not value:
        raise invalid(field, "is required")
    return value


def _optional_instant(msg, name: str, default: datetime | None) -> datetime | None:
    """A request's instant, or `default` when unset (its range was checked at the edge)."""
    if not msg.HasField(name):
        return default
    try:
        return instant(getattr(msg, name), name)
    except TicketError as exc:
        raise ticket_failure(exc) from None


class Call(Protocol):
    """What a call's face tells the implementation about the call in flight."""

    def time_remaining(self) -> float | None:
        """Seconds left before the call's deadline; None without one."""

    def is_active(self) -> bool:
        """False once the client went away (streams stop then)."""

    def add_callback(self, callback: Callable[[], None]) -> object:
        """Run `callback` when the call ends (wakes a waiting stream)."""


class EntitlementCalls:
    """One worker's service: each method takes the request message and the call, and returns
    the response message (a stream: an iterator of them) or raises. One per worker, shared by
    its faces (so the alert streams' limit is per worker, whichever face they come from)."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.store = runtime.store
        self.clock = runtime.clock
        bus = runtime.alert_bus
        self.alerts = None if bus is None else AlertService(
            runtime.store, bus=bus, max_watchers=max(1, runtime.config.threads // 2)
        )

    def ping(self, request, call: Call):
        return pb.PingResponse()

    def check_coverage(self, request, call: Call):
        started = time.perf_counter()
        now = self.clock.now()
        if not request.HasField("ticket"):
            raise invalid("ticket", "is required")
        try:
            ticket = ticket_from_proto(request.ticket, now)
            if request.consume and ticket.pauses:
                raise invalid("ticket.pauses", "an admitted ticket's history is kept as "
                              "events: send `events` (or RecordTicketEvents later)")
            if request.consume and len(ticket.events) > MAX_EVENTS_PER_CALL:
                raise invalid("ticket.events", f"an admission keeps at most "
                              f"{MAX_EVENTS_PER_CALL} events; send the rest with "
                              "RecordTicketEvents")
            try:
                with self.runtime.holder.lease() as snapshot:
                    answer = check_coverage(
                        snapshot,
                        self.store,
                        ticket,
                        now,
                        consume=request.consume,
                        on_commit_alerts=self.runtime.admission_alerts,
                        sla_clocks=self.runtime.sla_clocks,
                    )
                if request.consume and (answer.admitted or answer.duplicate):
                    self._keep_history(ticket, now)
            finally:  # also after a failure: the commit group this call led may hold alerts
                self._alerts_committed()
        except TicketError as exc:
            raise ticket_failure(exc, "ticket.") from None
        self._observe(request.consume, ticket, answer, now, started)
        return pb.CheckCoverageResponse(
            decision=answer.decision, duplicate=answer.duplicate, admitted=answer.admitted
        )

    def _keep_history(self, ticket, now: datetime) -> None:
        """An admitted ticket's events (and first_response_at, resolved_at) become its first
        recorded events; a retried admission records them again, changing nothing."""
        events = History.of(ticket).events
        if events and self.runtime.sla_clocks is not None:
            with contextlib.suppress(Failure):  # no clock: admitted before clocks were kept
                record_events(self.runtime.sla_clocks, self.store, ticket.ticket_id, events, now,
                              self.runtime.alert_bus)

    def _observe(self, consume: bool, ticket, answer, now: datetime, started: float) -> None:
        """Metrics and the decision log of one CheckCoverage answer."""
        reason = pb.CoverageReason.Name(answer.decision.reason).removeprefix("COVERAGE_REASON_")
        metrics.count_decision(reason)
        if consume:
            if answer.duplicate:
                metrics.count_admission("duplicate")
            elif answer.admitted:
                metrics.count_admission("admitted")
            elif reason == "QUOTA_EXHAUSTED":
                metrics.count_admission("exhausted")
        log = self.runtime.decision_log
        if log is not None:
            log.record(
                at=now,
                request_id=REQUEST_ID.get(),
                ticket=ticket,
                decision=answer.decision,
                consume=consume,
                admitted=answer.admitted,
                duplicate=answer.duplicate,
                latency_ms=(time.perf_counter() - started) * 1e3,
            )

    def record_usage(self, request, call: Call):
        now = self.clock.now()
        ticket_id = _required("ticket_id", request.ticket_id)
        key = _required("idempotency_key", request.idempotency_key)
        amount = request.amount
        if not math.isfinite(amount) or not 0 < amount <= MAX_RECORD_AMOUNT:
            limit = f"{MAX_RECORD_AMOUNT:,}"
            raise invalid("amount", f"must be greater than 0 and at most {limit}, got {amount!r}")
        unit = _required("unit", request.unit)
        at = _optional_instant(request, "recorded_at", now)
        if at > now + MAX_FUTURE_SKEW:
            raise invalid("recorded_at", f"{at.isoformat()} is more than a day after server time")
        with self.runtime.holder.lease() as snapshot:
            policy = snapshot.policy
            contract = self._charged_contract(policy, ticket_id, request.contract_id)
            plan = policy.plans[contract.plan_id]
            if unit != plan.unit:
                raise invalid(
                    "unit",
                    f"contract {contract.id} is on plan {plan.id}, which counts "
                    f"{plan.unit}, not {unit!r}",
                )
            if lifecycle(contract, at) != "active":
                raise invalid(
                    "recorded_at",
                    f"{at.isoformat()} is outside the term of contract {contract.id}",
                )
            key_of_period = period_key(period_at(plan, contract, at))
            result = self.store.record(
                key,
                ticket_id=ticket_id,
                contract_id=contract.id,
                period_key=key_of_period,
                amount=amount,
                unit=unit,
                at=at,
                on_commit_alerts=self.runtime.record_alerts,
                now=now,
                at_sent=request.HasField("recorded_at"),
            )
            self._alerts_committed()
            if result.status == "conflict":
                raise Failure(
                    Code.ALREADY_EXISTS,
                    f"{key!r} was already used for a different record; use a new key",
                    "idempotency_key",
                )
            quota = quota_for(plan, contract, at, self.store)
        return pb.RecordUsageResponse(
            contract_id=contract.id,
            quota=quota_to_proto(quota),
            duplicate=result.status == "duplicate",
        )

    def _charged_contract(self, policy: Policy, ticket_id: str, contract_id: str) -> Contract:
        """The contract named, else the one the ticket was admitted on or last recorded on."""
        if contract_id:
            contract = policy.contracts.get(contract_id)
            if contract is None:
                raise not_found("contract_id", f"no contract {contract_id!r} in the policy")
            return contract
        usage = self.store.ticket_usage(ticket_id)
        if usage is None or not usage.contract_id:
            raise not_found(
                "ticket_id",
                f"ticket {ticket_id!r} was never admitted nor recorded; pass contract_id",
            )
        contract = policy.contracts.get(usage.contract_id)
        if contract is None:
            raise not_found(
                "contract_id",
                f"ticket {ticket_id!r} was admitted on contract {usage.contract_id!r}, "
                "which is no longer in the policy",
            )
        return contract

    def release_usage(self, request, call: Call):
        ticket_id = _required("ticket_id", request.ticket_id)
        reason = request.reason
        if self.store.ticket_usage(ticket_id) is None:
            raise not_found("ticket_id", f"the ledger has no usage of ticket {ticket_id!r}")
        released = self.store.release(ticket_id, reason=reason, at=self.clock.now())
        units = {}
        with contextlib.suppress(NoPolicyLoaded), self.runtime.holder.lease() as snapshot:
            policy = snapshot.policy
            for contract_id in released:
                contract = policy.contracts.get(contract_id)
                if contract is not None:
                    units[contract_id] = policy.plans[contract.plan_id].unit
        return pb.ReleaseUsageResponse(
            released=[
                pb.ReleasedUsage(contract_id=cid, unit=units.get(cid, ""), amount=amount)
                for cid, amount in sorted(released.items())
            ]
        )

    def get_contract_status(self, request, call: Call):
        contract_id = _required("contract_id", request.contract_id)
        at = _optional_instant(request, "at", self.clock.now())
        with self.runtime.holder.lease() as snapshot:
            policy = snapshot.policy
            contract = policy.contracts.get(contract_id)
            if contract is None:
                raise not_found("contract_id", f"no contract {contract_id!r} in the policy")
            status = contract_status(policy, self.store, contract, at)
        return pb.GetContractStatusResponse(
            contract=status, as_of=timestamp(at), policy_revision=policy.revision
        )

    def list_contracts(self, request, call: Call):
        at = _optional_instant(request, "at", self.clock.now())
        where = ContractFilter(
            customer_id=request.customer_id,
            state=STATES.get(request.lifecycle, ""),  # UNSPECIFIED (0): every lifecycle
            plan_id=request.plan_id,
            product=request.product,
            ends_before=_optional_instant(request, "ends_before", None),
        )
        try:
            limit = page_size(request.page_size)
        except ValueError as exc:
            raise invalid("page_size", str(exc)) from None
        # A given `at` is part of the listing; "now" is not, or page two would never match.
        query = query_fingerprint(where, at.isoformat() if request.HasField("at") else "now")
        try:
            after = decode_page_token(request.page_token, query)
        except PageTokenError as exc:
            raise invalid("page_token", str(exc)) from None
        with self.runtime.holder.lease() as snapshot:
            policy = snapshot.policy
            page, more = select_contracts(policy, where, at, after, limit)
            statuses = [contract_status(policy, self.store, c, at) for c in page]
        return pb.ListContractsResponse(
            contracts=statuses,
            next_page_token=encode_page_token(page[-1].id, query) if more else "",
            as_of=timestamp(at),
            policy_revision=policy.revision,
        )

    def server_info(self, request, call: Call):
        serving = self.runtime.holder.serving()
        status = self.runtime.reloader.status
        out = pb.ServerInfoResponse(
            policy_revision=serving.revision if serving else "",
            last_reload_error=status.last_error or "",
            store_backend=self.runtime.store_backend,
            version=__version__,
            workers=self.runtime.config.workers,
            pid=os.getpid(),
        )
        if serving is not None:
            out.loaded_at.CopyFrom(timestamp(serving.loaded_at))
        if status.last_attempt_at is not None:
            out.last_reload_attempt_at.CopyFrom(timestamp(status.last_attempt_at))
        if status.last_error_at is not None:
            out.last_reload_error_at.CopyFrom(timestamp(status.last_error_at))
        return out

    def reload(self, request, call: Call):
        outcome = self.runtime.reload_now("Reload RPC")
        return pb.ReloadResponse(
            policy_revision=outcome.revision or "",
            changed=outcome.status == APPLIED,
            error=outcome.message,
        )

    # -- SLA clocks of admitted tickets (service/ticketsla.py) ---------------------------------
    def _sla_clocks(self):
        if self.runtime.sla_clocks is None:
            raise Failure(Code.UNIMPLEMENTED, "SLA clocks are not available")
        return self.runtime.sla_clocks

    def record_ticket_events(self, request, call: Call):
        now = self.clock.now()
        ticket_id = _required("ticket_id", request.ticket_id)
        return record_ticket_events(self._sla_clocks(), self.store, request, now, ticket_id,
                                    self.runtime.alert_bus)

    def get_ticket_sla(self, request, call: Call):
        ticket_id = _required("ticket_id", request.ticket_id)
        now = self.clock.now()
        at = _optional_instant(request, "at", now)
        return get_ticket_sla(self._sla_clocks(), self.store, ticket_id, at, now)

    # -- alerts: the alert log (service/alertlog.py) ----------------------------------------
    def _alerts_committed(self) -> None:
        """Wake this worker's alert streams when the call just committed alerts."""
        committed = getattr(self.runtime.admission_alerts, "committed", None)
        if committed is not None:
            committed()

    def _alert_service(self):
        if self.alerts is None:
            raise Failure(Code.UNIMPLEMENTED, "alerts are not available")
        return self.alerts

    # -- the one entry every face calls ---------------------------------------------------------
    def handle(self, rpc_name: str, request, call: Call):
        """Answer one unary call: the response, or a Failure (every exception is classified)."""
        remaining = call.time_remaining()
        if remaining is not None and remaining <= 0:
            raise Failure(Code.DEADLINE_EXCEEDED, "deadline expired before start")
        try:
            check_request(request)
            return getattr(self, implementation_name(rpc_name))(request, call)
        except Exception as exc:
            raise classify(exc) from None

    def handle_stream(self, rpc_name: str, request, call: Call) -> Iterator:
        """Answer one server-streaming call: its messages; a failure ends it as a Failure."""
        yield from self.open_stream(rpc_name, request, call)

    def open_stream(self, rpc_name: str, request, call: Call) -> Iterator:
        """handle_stream, with the request checked now: a bad one raises its Failure here, so
        a face whose status goes out with the first byte (Server-Sent Events) can answer it."""
        try:
            check_request(request)
            messages = getattr(self, implementation_name(rpc_name))(request, call)
        except Exception as exc:
            raise classify(exc) from None
        return self._classified(messages)

    @staticmethod
    def _classified(messages: Iterator) -> Iterator:
        try:
            yield from messages
        except Exception as exc:
            raise classify(exc) from None

    @staticmethod
    def _alert_filter(f: pb.AlertFilter) -> None:
        try:
            kinds_in(f.kinds)
        except ValueError as exc:
            raise invalid("filter.kinds", str(exc)) from None

    def watch_alerts(self, request, call: Call):
        service = self._alert_service()
        self._alert_filter(request.filter)
        return service.watch(request, call)

    def recent_alerts(self, f: pb.AlertFilter, before_cursor: int, limit: int) -> list[pb.Alert]:
        """The dashboard's alert log, newest first before a cursor (ListAlerts pages forward)."""
        service = self._alert_service()
        self._alert_filter(f)
        if before_cursor < 0:
            raise invalid("before", "must not be negative")
        try:
            return service.recent(f, before_cursor, limit)
        except Exception as exc:
            raise classify(exc) from None

    def list_alerts(self, request, call: Call):
        service = self._alert_service()
        self._alert_filter(request.filter)
        if request.page_size < 0:
            raise invalid("page_size", "must not be negative")
        return service.list(request)


SERVICE = pb.DESCRIPTOR.services_by_name["EntitlementService"]


def implementation_name(rpc_name: str) -> str:
    """The EntitlementCalls method of an RPC: `CheckCoverage` -> `check_coverage`."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in rpc_name).lstrip("_")
