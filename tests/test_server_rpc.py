"""Every RPC over a real port against both stores: happy paths, errors naming their field."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from test_server_harness import NOW, SERVICE, health_status, in_process, make_bundle, ticket

from entitle.server.alerts import sweeper_of
from entitle.server.faces.grpc.status import FIELD_METADATA
from entitle.server.service.wire import timestamp
from entitle.v1 import entitle_pb2 as pb

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def bundle(tmp_path):
    return make_bundle(tmp_path)


@pytest.fixture
def srv(bundle, store_url):
    with in_process(bundle, store_url) as server:
        yield server


def consume(stub, msg: pb.Ticket) -> pb.CheckCoverageResponse:
    return stub.CheckCoverage(pb.CheckCoverageRequest(ticket=msg, consume=True), timeout=10)


def read(stub, msg: pb.Ticket) -> pb.CheckCoverageResponse:
    return stub.CheckCoverage(pb.CheckCoverageRequest(ticket=msg), timeout=10)


def status(stub, contract_id: str) -> pb.ContractStatus:
    return stub.GetContractStatus(pb.GetContractStatusRequest(contract_id=contract_id)).contract


def fails(call, request, code: grpc.StatusCode, field: str | None = None) -> str:
    """Assert the call fails with `code`, its message starting with `field:`; return it."""
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)
    err = info.value
    assert err.code() == code, err.details()
    if field is not None:
        assert err.details().startswith(f"{field}: "), err.details()
        assert dict(err.trailing_metadata())[FIELD_METADATA] == field
    return err.details()


# --- CheckCoverage -------------------------------------------------------------------------


def test_read_decides_without_counting(srv):
    reply = read(srv.stub, ticket("T-1", "acme", "backup", "urgent", subject="backup outage"))
    d = reply.decision
    assert (d.covered, d.reason, d.contract_id, d.sla_id) == (
        True, pb.COVERAGE_REASON_COVERED, "acme-backup", "backup-standard"
    )
    assert {t.metric for t in d.targets} == {"first_response", "resolution"}
    assert d.quota.unlimited and d.quota.unit == "incidents"
    assert d.decided_at.ToDatetime(tzinfo=UTC) == NOW
    assert d.policy_revision == srv.runtime.holder.serving().revision
    assert not reply.admitted and not reply.duplicate
    read(srv.stub, ticket("T-1", "acme", "backup"))
    assert status(srv.stub, "acme-backup").quota.used == 0


def test_admission_counts_once_and_a_retry_returns_the_original(srv):
    first = consume(srv.stub, ticket("T-1"))
    assert first.admitted and not first.duplicate
    assert first.decision.contract_id == "globex-mail-pack"
    assert (first.decision.quota.used, first.decision.quota.remaining) == (1, 9)  # its own unit
    again = consume(srv.stub, ticket("T-1"))
    assert again.duplicate and not again.admitted
    assert again.decision == first.decision
    changed = consume(srv.stub, ticket("T-1", priority="low"))  # the first admission wins
    assert changed.duplicate and changed.decision == first.decision
    assert status(srv.stub, "globex-mail-pack").quota.used == 1


def test_admissions_stop_at_the_limit_of_a_rejecting_plan(srv):
    replies = [consume(srv.stub, ticket(f"T-{i}")) for i in range(12)]
    assert [r.admitted for r in replies] == [True] * 10 + [False] * 2
    last = replies[-1].decision
    assert (last.covered, last.reason) == (False, pb.COVERAGE_REASON_QUOTA_EXHAUSTED)
    assert last.quota.remaining == 0 and not last.targets
    assert status(srv.stub, "globex-mail-pack").quota.used == 10
    # An uncovered ticket is not admitted: its retry decides again.
    assert not consume(srv.stub, ticket("T-11")).duplicate


def test_overage_plan_admits_past_the_limit_as_overage(srv):
    reasons = [consume(srv.stub, ticket(f"T-{i}", "initech", "mail")).decision for i in range(6)]
    assert [d.contract_id for d in reasons] == ["initech-basic"] * 6
    assert reasons[4].reason == pb.COVERAGE_REASON_COVERED
    assert reasons[5].reason == pb.COVERAGE_REASON_COVERED_OVERAGE
    assert reasons[5].quota.used == 6 and reasons[5].quota.remaining == -1


def test_uncovered_reasons(srv):
    cases = {
        ("nobody", "mail"): pb.COVERAGE_REASON_NO_CONTRACT,
        ("acme", "mail"): pb.COVERAGE_REASON_PRODUCT_NOT_COVERED,
        ("globex", "mainframe-connector"): pb.COVERAGE_REASON_CONTRACT_EXPIRED,
    }
    for (customer, product), reason in cases.items():
        d = consume(srv.stub, ticket("T-x", customer, product)).decision
        assert (d.covered, d.reason) == (False, reason), (customer, product)


def test_hours_plan_admission_ties_the_ticket_to_its_contract(srv):
    reply = consume(srv.stub, ticket("T-h", "acme", "sync"))
    assert reply.admitted and reply.decision.contract_id == "acme-hours"
    assert reply.decision.quota.used == 0  # hours are counted when work is logged
    rec = srv.stub.RecordUsage(
        pb.RecordUsageRequest(ticket_id="T-h", amount=1.5, unit="hours", idempotency_key="w1")
    )
    assert rec.contract_id == "acme-hours" and rec.quota.used == 1.5


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda t: t.ClearField("ticket_id"), "ticket.ticket_id"),
        (lambda t: t.ClearField("customer_id"), "ticket.customer_id"),
        (lambda t: t.ClearField("product"), "ticket.product"),
        (lambda t: setattr(t, "priority", "critical"), "ticket.priority"),
        (lambda t: t.ClearField("priority"), "ticket.priority"),
        (lambda t: t.created_at.FromDatetime(datetime(1999, 12, 31)), "ticket.created_at"),
        (lambda t: t.created_at.CopyFrom(timestamp(NOW + timedelta(days=2))), "ticket.created_at"),
        (lambda t: t.created_at.CopyFrom(Timestamp(seconds=10**15)), "ticket.created_at"),
        (lambda t: setattr(t, "ticket_id", "x" * 1025), "ticket.ticket_id"),
        (lambda t: setattr(t, "subject", "x" * 20000), "ticket.subject"),
        (
            lambda t: setattr(t.attributes["license_count"], "number_value", math.nan),
            "ticket.attributes.license_count",
        ),
        (lambda t: t.attributes["tier"].Clear(), "ticket.attributes.tier"),
    ],
)
def test_bad_tickets_name_their_field(srv, mutate, field):
    msg = ticket("T-bad")
    mutate(msg)
    for consume_it in (False, True):
        request = pb.CheckCoverageRequest(ticket=msg, consume=consume_it)
        fails(srv.stub.CheckCoverage, request, grpc.StatusCode.INVALID_ARGUMENT, field)


def test_an_omitted_created_at_is_the_servers_time(srv):
    """An automation firing on ticket creation may leave created_at out: it is now."""
    sent = ticket("T-now", "globex", "mail", "high")
    sent.ClearField("created_at")
    reply = consume(srv.stub, sent)
    assert reply.admitted and reply.decision.covered
    assert reply.decision.decided_at.ToDatetime(tzinfo=UTC) == NOW
    dated = read(srv.stub, ticket("T-dated", "globex", "mail", "high", created_at=NOW))
    assert [t.due_at for t in reply.decision.targets] == [t.due_at for t in dated.decision.targets]


def test_a_missing_priority_is_required_not_unknown(srv):
    msg = ticket("T-bad")
    msg.ClearField("priority")
    details = fails(srv.stub.CheckCoverage, pb.CheckCoverageRequest(ticket=msg),
                    grpc.StatusCode.INVALID_ARGUMENT, "ticket.priority")
    assert "is required" in details


@pytest.mark.parametrize("value", [1e16, 1e20, -1e20, 1e-5, 1e-7])
def test_numbers_in_exponent_form_are_decided(srv, value):
    """durable-rules cannot read `1e+16`: the rules module sends fixed-point numbers."""
    msg = ticket("T-exp", "initech", "analytics")
    msg.attributes["license_count"].number_value = value
    reply = srv.stub.CheckCoverage(pb.CheckCoverageRequest(ticket=msg))
    assert reply.decision.covered


def test_missing_ticket(srv):
    request = pb.CheckCoverageRequest()
    fails(srv.stub.CheckCoverage, request, grpc.StatusCode.INVALID_ARGUMENT, "ticket")


def test_oversized_request_is_refused_by_size(srv):
    msg = ticket("T-big")
    msg.subject = "x" * (2 * 1024 * 1024)
    request = pb.CheckCoverageRequest(ticket=msg)
    fails(srv.stub.CheckCoverage, request, grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert read(srv.stub, ticket("T-ok")).decision.covered  # and the worker serves on


def test_unexpected_failure_is_internal_with_an_error_id_and_the_worker_survives(
    srv, monkeypatch, caplog
):
    store = srv.runtime.store

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "used", broken)
    details = fails(srv.stub.CheckCoverage, pb.CheckCoverageRequest(ticket=ticket("T")),
                    grpc.StatusCode.INTERNAL)
    assert "error id" in details and "disk on fire" not in details and "Traceback" not in details
    monkeypatch.undo()
    assert read(srv.stub, ticket("T")).decision.covered


# --- RecordUsage / ReleaseUsage -----------------------------------------------------------


def record(stub, key="w1", amount=2.5, unit="hours", ticket_id="T-h", contract_id="acme-hours",
           **extra):
    return pb.RecordUsageRequest(
        ticket_id=ticket_id, contract_id=contract_id, amount=amount, unit=unit,
        idempotency_key=key, **extra,
    )


def test_record_usage_is_exactly_once_per_key(srv):
    first = srv.stub.RecordUsage(record(srv.stub))
    assert (first.contract_id, first.quota.used, first.duplicate) == ("acme-hours", 2.5, False)
    again = srv.stub.RecordUsage(record(srv.stub))
    assert again.duplicate and again.quota.used == 2.5
    fails(srv.stub.RecordUsage, record(srv.stub, amount=3), grpc.StatusCode.ALREADY_EXISTS,
          "idempotency_key")
    big = srv.stub.RecordUsage(record(srv.stub, key="w2", amount=60))
    assert big.quota.used == 62.5 and big.quota.remaining == -12.5  # work done is work done


def test_a_key_reused_with_another_recorded_at_conflicts(srv):
    at = timestamp(datetime(2026, 2, 1, tzinfo=UTC))
    srv.stub.RecordUsage(record(srv.stub, recorded_at=at))
    assert srv.stub.RecordUsage(record(srv.stub, recorded_at=at)).duplicate
    later = timestamp(datetime(2026, 2, 2, tzinfo=UTC))
    fails(srv.stub.RecordUsage, record(srv.stub, recorded_at=later),
          grpc.StatusCode.ALREADY_EXISTS, "idempotency_key")
    # Unset, recorded_at is server time: a retry without it is the same record.
    srv.stub.RecordUsage(record(srv.stub, key="w2"))
    assert srv.stub.RecordUsage(record(srv.stub, key="w2")).duplicate


def test_a_recorded_ticket_is_charged_again_to_its_contract(srv):
    srv.stub.RecordUsage(record(srv.stub, ticket_id="T-rec"))
    again = srv.stub.RecordUsage(record(srv.stub, key="w2", ticket_id="T-rec", contract_id=""))
    assert (again.contract_id, again.quota.used) == ("acme-hours", 5.0)


def test_record_usage_at_a_given_instant_counts_in_that_period(srv):
    at = timestamp(datetime(2026, 2, 1, tzinfo=UTC))
    reply = srv.stub.RecordUsage(record(srv.stub, recorded_at=at))
    assert reply.quota.used == 2.5
    before_term = timestamp(datetime(2025, 12, 1, tzinfo=UTC))
    fails(srv.stub.RecordUsage, record(srv.stub, key="w9", recorded_at=before_term),
          grpc.StatusCode.INVALID_ARGUMENT, "recorded_at")


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"amount": -2}, grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        ({"amount": 0}, grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        ({"amount": math.nan}, grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        ({"amount": math.inf}, grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        ({"amount": 1e16}, grpc.StatusCode.INVALID_ARGUMENT, "amount"),
        ({"unit": "days"}, grpc.StatusCode.INVALID_ARGUMENT, "unit"),
        ({"unit": ""}, grpc.StatusCode.INVALID_ARGUMENT, "unit"),
        ({"key": ""}, grpc.StatusCode.INVALID_ARGUMENT, "idempotency_key"),
        ({"ticket_id": ""}, grpc.StatusCode.INVALID_ARGUMENT, "ticket_id"),
        ({"contract_id": "nope"}, grpc.StatusCode.NOT_FOUND, "contract_id"),
        ({"contract_id": "", "ticket_id": "never"}, grpc.StatusCode.NOT_FOUND, "ticket_id"),
        (
            {"recorded_at": Timestamp(seconds=946684799)},  # 1999-12-31T23:59:59Z
            grpc.StatusCode.INVALID_ARGUMENT,
            "recorded_at",
        ),
    ],
)
def test_record_usage_errors(srv, changes, code, field):
    fails(srv.stub.RecordUsage, record(srv.stub, **changes), code, field)


def test_unit_mismatch_names_the_plan_and_its_unit(srv):
    details = fails(srv.stub.RecordUsage, record(srv.stub, unit="days"),
                    grpc.StatusCode.INVALID_ARGUMENT, "unit")
    assert "hours-pack-50" in details and "hours" in details


def test_release_gives_back_admission_and_records_once(srv):
    consume(srv.stub, ticket("T-1"))
    consume(srv.stub, ticket("T-h", "acme", "sync"))
    srv.stub.RecordUsage(record(srv.stub, key="w1", amount=2))
    srv.stub.RecordUsage(record(srv.stub, key="w2", amount=3))
    out = srv.stub.ReleaseUsage(pb.ReleaseUsageRequest(ticket_id="T-h", reason="deleted"))
    assert [(r.contract_id, r.unit, r.amount) for r in out.released] == [("acme-hours", "hours", 5)]
    out = srv.stub.ReleaseUsage(pb.ReleaseUsageRequest(ticket_id="T-1", reason="merged"))
    assert [(r.contract_id, r.unit, r.amount) for r in out.released] == [
        ("globex-mail-pack", "incidents", 1)
    ]
    assert not srv.stub.ReleaseUsage(pb.ReleaseUsageRequest(ticket_id="T-1")).released
    assert status(srv.stub, "globex-mail-pack").quota.used == 0
    assert status(srv.stub, "acme-hours").quota.used == 0
    assert consume(srv.stub, ticket("T-1")).duplicate  # released, but still admitted once
    fails(srv.stub.ReleaseUsage, pb.ReleaseUsageRequest(ticket_id="never"),
          grpc.StatusCode.NOT_FOUND, "ticket_id")
    fails(srv.stub.ReleaseUsage, pb.ReleaseUsageRequest(), grpc.StatusCode.INVALID_ARGUMENT,
          "ticket_id")


# --- Contracts ------------------------------------------------------------------------------


def test_contract_status_through_the_lifecycle(srv):
    consume(srv.stub, ticket("T-1"))
    active = status(srv.stub, "globex-mail-pack")
    assert active.lifecycle == pb.LIFECYCLE_ACTIVE and active.plan_type == "pack"
    assert (active.quota.limit, active.quota.used, active.quota.remaining) == (10, 1, 9)
    assert not active.HasField("days_to_expiry") and not active.HasField("end_at")
    assert active.products == ["mail"] and active.owner == "americas-desk@support.example"

    planned = status(srv.stub, "globex-premium-2027")
    assert planned.lifecycle == pb.LIFECYCLE_PLANNED and not planned.HasField("quota")
    expired = status(srv.stub, "globex-legacy-onsite")
    assert expired.lifecycle == pb.LIFECYCLE_EXPIRED and expired.days_to_expiry < 0
    everything = status(srv.stub, "initech-basic")
    assert everything.all_products and not everything.products

    at = timestamp(datetime(2026, 12, 31, 12, tzinfo=UTC))
    later = srv.stub.GetContractStatus(
        pb.GetContractStatusRequest(contract_id="globex-premium-2026", at=at)
    )
    assert later.as_of == at and 0 < later.contract.days_to_expiry < 1
    assert later.policy_revision == srv.runtime.holder.serving().revision


def test_contract_status_errors(srv):
    call = srv.stub.GetContractStatus
    fails(call, pb.GetContractStatusRequest(), grpc.StatusCode.INVALID_ARGUMENT, "contract_id")
    fails(call, pb.GetContractStatusRequest(contract_id="nope"), grpc.StatusCode.NOT_FOUND,
          "contract_id")
    fails(call, pb.GetContractStatusRequest(contract_id="acme-hours", at=Timestamp(seconds=5)),
          grpc.StatusCode.INVALID_ARGUMENT, "at")


def ids(reply: pb.ListContractsResponse) -> list[str]:
    return [c.contract_id for c in reply.contracts]


def test_list_contracts_filters(srv):
    lst = srv.stub.ListContracts
    everything = ids(lst(pb.ListContractsRequest()))
    assert everything == sorted(everything) and "globex-mail-pack" in everything
    assert ids(lst(pb.ListContractsRequest(customer_id="acme"))) == [
        "acme-backup", "acme-hours", "acme-security"
    ]
    planned = ids(lst(pb.ListContractsRequest(lifecycle=pb.LIFECYCLE_PLANNED)))
    assert planned == ["globex-premium-2027"]
    assert ids(lst(pb.ListContractsRequest(plan_id="premium-monthly"))) == [
        "globex-premium-2026", "globex-premium-2027"
    ]
    mail = ids(lst(pb.ListContractsRequest(product="mail", customer_id="initech")))
    assert mail == ["initech-basic"]  # covers all products
    renewals = lst(pb.ListContractsRequest(ends_before=timestamp(datetime(2027, 1, 2, tzinfo=UTC)),
                                           lifecycle=pb.LIFECYCLE_ACTIVE))
    assert "globex-premium-2026" in ids(renewals) and "globex-mail-pack" not in ids(renewals)
    assert all(c.lifecycle == pb.LIFECYCLE_ACTIVE for c in renewals.contracts)
    assert not lst(pb.ListContractsRequest(customer_id="nobody")).contracts


def test_list_contracts_pages_cover_everything_once(srv):
    everything = ids(srv.stub.ListContracts(pb.ListContractsRequest()))
    seen, token = [], ""
    while True:
        page = srv.stub.ListContracts(pb.ListContractsRequest(page_size=3, page_token=token))
        assert len(page.contracts) <= 3
        seen += ids(page)
        token = page.next_page_token
        if not token:
            break
    assert seen == everything


def test_list_contracts_errors(srv):
    lst = srv.stub.ListContracts
    first = lst(pb.ListContractsRequest(page_size=1))
    fails(lst, pb.ListContractsRequest(page_size=1, page_token=first.next_page_token,
                                       customer_id="acme"),
          grpc.StatusCode.INVALID_ARGUMENT, "page_token")
    fails(lst, pb.ListContractsRequest(page_token="garbage!"), grpc.StatusCode.INVALID_ARGUMENT,
          "page_token")
    fails(lst, pb.ListContractsRequest(page_size=-1), grpc.StatusCode.INVALID_ARGUMENT,
          "page_size")
    fails(lst, pb.ListContractsRequest(lifecycle=42), grpc.StatusCode.INVALID_ARGUMENT,
          "lifecycle")
    fails(lst, pb.ListContractsRequest(ends_before=Timestamp(seconds=-10**12)),
          grpc.StatusCode.INVALID_ARGUMENT, "ends_before")


# --- Administration, health, reflection -------------------------------------------------------


def test_server_info_ping_and_alerts_are_served(srv, store_url):
    info = srv.stub.ServerInfo(pb.ServerInfoRequest())
    assert info.policy_revision == srv.runtime.holder.serving().revision
    assert info.HasField("loaded_at") and not info.last_reload_error
    assert info.store_backend == store_url.partition(":")[0].split("+")[0]
    assert info.workers == 1 and info.pid > 0 and info.version
    assert srv.stub.Ping(pb.PingRequest()) == pb.PingResponse()
    # Alerts are served (tests/test_alerts.py covers them): the catch-up sweep's first alert.
    assert sweeper_of(srv.runtime).wait_sweeps(1)
    listed = srv.stub.ListAlerts(pb.ListAlertsRequest(page_size=1), timeout=10)
    streamed = next(iter(srv.stub.WatchAlerts(pb.WatchAlertsRequest(), timeout=10)))
    assert streamed.alert == listed.alerts[0]


def test_health_and_reflection(srv):
    for service in ("", SERVICE):
        code, details = health_status(srv.channel, service)
        assert code == SERVING
        assert details["entitle-policy-revision"] == srv.runtime.holder.serving().revision
    stub = reflection_pb2_grpc.ServerReflectionStub(srv.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    reply = next(stub.ServerReflectionInfo(iter([request]), timeout=10))
    names = {s.name for s in reply.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names


def test_invalid_bundle_at_start_serves_nothing_but_says_why(tmp_path, store_url):
    bundle = make_bundle(tmp_path)
    good = (bundle / "plans.yaml").read_text()
    (bundle / "plans.yaml").write_text(good + "\n---\nkind: Plan\nid: [broken\n")
    with in_process(bundle, store_url) as srv:
        info = srv.stub.ServerInfo(pb.ServerInfoRequest())
        assert not info.policy_revision and "plans.yaml" in info.last_reload_error
        assert info.HasField("last_reload_error_at")
        code, details = health_status(srv.channel, SERVICE)
        assert code == NOT_SERVING and "plans.yaml" in details["entitle-last-reload-error"]
        for call, request in [
            (srv.stub.CheckCoverage, pb.CheckCoverageRequest(ticket=ticket("T"))),
            (srv.stub.GetContractStatus, pb.GetContractStatusRequest(contract_id="acme-hours")),
            (srv.stub.ListContracts, pb.ListContractsRequest()),
            (srv.stub.RecordUsage, record(srv.stub)),
        ]:
            fails(call, request, grpc.StatusCode.FAILED_PRECONDITION)
        srv.stub.Ping(pb.PingRequest())

        (bundle / "plans.yaml").write_text(good)
        reloaded = srv.stub.Reload(pb.ReloadRequest())
        assert reloaded.changed and reloaded.policy_revision and not reloaded.error
        assert health_status(srv.channel, SERVICE)[0] == SERVING
        assert read(srv.stub, ticket("T")).decision.covered
        assert not srv.stub.ServerInfo(pb.ServerInfoRequest()).last_reload_error


def test_a_ticket_with_history_gets_each_target_clock(srv):
    """CheckCoverage replays the ticket's events: a paused resolution has no due time."""
    msg = ticket("T-clock", "globex", "backup", "high", created_at=NOW - timedelta(hours=3))
    msg.events.append(pb.TicketEvent(id="e1", type="status_changed", status="Pending",
                                     at=timestamp(NOW - timedelta(hours=2))))
    msg.events.append(pb.TicketEvent(id="e1", type="status_changed", status="open",
                                     at=timestamp(NOW - timedelta(hours=1))))  # a redelivery
    d = read(srv.stub, msg).decision
    targets = {t.metric: t for t in d.targets}
    first, resolution = targets["first_response"], targets["resolution"]
    # first_response is never paused on premium: 1h from 09:00 CEST, breached at 10:00
    assert first.state == pb.CLOCK_STATE_BREACHED
    assert first.breached_at.ToDatetime(tzinfo=UTC) == NOW - timedelta(hours=2)
    assert [c.percent for c in first.crossed] == [50, 75, 100]
    # resolution: 1h run, then pending since (the second delivery of e1 does not resume it)
    assert resolution.state == pb.CLOCK_STATE_PAUSED and resolution.paused
    assert not resolution.HasField("due_at")
    assert (resolution.elapsed_minutes, resolution.remaining_minutes) == (60, 120)
    assert resolution.started_at.ToDatetime(tzinfo=UTC) == NOW - timedelta(hours=3)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (pb.TicketEvent(id="e1", type="replied", at=timestamp(NOW)), "ticket.events[0].type"),
        (pb.TicketEvent(id="", type="agent_reply", at=timestamp(NOW)), "ticket.events[0].id"),
        (pb.TicketEvent(id="e1", type="agent_reply"), "ticket.events[0].at"),
        (pb.TicketEvent(id="e1", type="priority_changed", priority="p1", at=timestamp(NOW)),
         "ticket.events[0].priority"),
    ],
)
def test_bad_ticket_events_name_their_field(srv, event, field):
    msg = ticket("T-bad-event")
    msg.events.append(event)
    fails(srv.stub.CheckCoverage, pb.CheckCoverageRequest(ticket=msg),
          grpc.StatusCode.INVALID_ARGUMENT, field)


def test_history_is_events_or_pauses_not_both(srv):
    msg = ticket("T-both")
    msg.pauses.append(pb.Pause(start=timestamp(NOW)))
    msg.events.append(pb.TicketEvent(id="e1", type="agent_reply", at=timestamp(NOW)))
    fails(srv.stub.CheckCoverage, pb.CheckCoverageRequest(ticket=msg),
          grpc.StatusCode.INVALID_ARGUMENT, "ticket.events")
