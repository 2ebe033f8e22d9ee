"""The request edge, case by case: the inputs issue 17 found answered INTERNAL (NUL in any
string on PostgreSQL, cursors of 2^63 and more on SQLite, `at` late in 9999 on open-ended
per-period contracts), the rules decided for them, on both stores; the JSON decoding that
names the field of a lone surrogate; the store's own refusals."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import json_format, message_factory
from google.protobuf.timestamp_pb2 import Timestamp
from hostile_values import string_paths
from test_hostile_requests import hostile_bundle, pg_schema
from test_server_harness import NOW, in_process, ticket

from entitle.server.faces.grpc.status import FIELD_METADATA
from entitle.server.service.calls import SERVICE
from entitle.server.service.failures import Code, Failure, classify
from entitle.server.service.jsonwire import request_from_json
from entitle.server.service.wire import timestamp
from entitle.server.store import AlertQuery, StoreError, ValueNotStorable, open_store
from entitle.v1 import entitle_pb2 as pb

LAST = Timestamp(seconds=253402300799, nanos=999_999_999)  # 9999-12-31T23:59:59.999999999Z
OPEN_ENDED_PER_PERIOD = (
    "initech-weekly-east", "initech-monthly-west", "initech-quarterly-anniversary",
    "initech-yearly-anniversary",
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def srv(request, tmp_path_factory):
    """One server per store for the whole module: these cases barely touch the ledger."""
    root = tmp_path_factory.mktemp(request.param)
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{root / 'e.db'}"
        else:
            url = stack.enter_context(pg_schema())
        yield stack.enter_context(in_process(hostile_bundle(root), url))


def call(srv, method: str, request):
    """The answer, or (code, field, details) of the failure."""
    rpc = getattr(srv.stub, method)
    try:
        if SERVICE.methods_by_name[method].server_streaming:
            stream = rpc(request, timeout=0.3)
            try:
                return next(iter(stream), None)
            finally:
                stream.cancel()
        return rpc(request, timeout=10)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return None  # a quiet stream
        return exc.code(), dict(exc.trailing_metadata() or ()).get(FIELD_METADATA), exc.details()


def refused(srv, method: str, request, field: str) -> str:
    got = call(srv, method, request)
    assert isinstance(got, tuple), f"{method} accepted {request}"
    code, named, details = got
    assert (code, named) == (grpc.StatusCode.INVALID_ARGUMENT, field), details
    assert details.startswith(f"{field}: "), details
    return details


def valid_request(method) -> object:
    """A request of `method` with every string field set (to be spoilt one at a time)."""
    request = message_factory.GetMessageClass(method.input_type)()
    if method.name == "CheckCoverage":
        request.ticket.CopyFrom(with_subject(ticket("T-edge", tier="gold"), "Mail is down"))
    return request


def _set(msg, attrs: list[str], value: str) -> None:
    """Set the string at `attrs` (field names; a map's entry by its key; an item by index)."""
    *parents, last = attrs
    for name in parents:
        if isinstance(name, int):  # an item of a repeated message field
            while len(msg) <= name:
                msg.add()
            msg = msg[name]
        else:
            msg = getattr(msg, name) if hasattr(msg, "DESCRIPTOR") else msg[name]
    setattr(msg, last, value)


def with_subject(msg: pb.Ticket, subject: str) -> pb.Ticket:
    msg.subject = subject
    return msg


STRING_FIELDS = [
    (method.name, path, attrs)
    for method in SERVICE.methods
    for path, attrs in string_paths(method.input_type)
]


# --- NUL and other controls, every string field of every request, on both stores ----------


@pytest.mark.parametrize(("method", "path", "attrs"), STRING_FIELDS,
                         ids=[f"{m}.{p}" for m, p, _ in STRING_FIELDS])
def test_nul_in_any_string_is_refused_naming_the_field(srv, method, path, attrs):
    request = valid_request(SERVICE.methods_by_name[method])
    _set(request, attrs, "a\x00b")
    if path.startswith("ticket.attributes."):
        path = "ticket.attributes.k"
    details = refused(srv, method, request, path)
    assert "U+0000" in details


@pytest.mark.parametrize("value", ["a\x01", "bell\x07", "\x1b[31m", "del\x7f", "c1\x85", "\x9f"])
def test_control_characters_are_refused_in_free_text_too(srv, value):
    refused(srv, "ReleaseUsage", pb.ReleaseUsageRequest(ticket_id="T-1", reason=value), "reason")
    msg = with_subject(ticket("T-ctl"), value)
    refused(srv, "CheckCoverage", pb.CheckCoverageRequest(ticket=msg), "ticket.subject")


@pytest.mark.parametrize("value", ["tab\t", "line\nbreak", "cr\r\n", "\u202eRTL", "\u2028"])
def test_free_text_keeps_tab_newline_and_carriage_return(srv, value):
    msg = with_subject(ticket("T-text", tier=value), value)
    reply = call(srv, "CheckCoverage", pb.CheckCoverageRequest(ticket=msg))
    assert isinstance(reply, pb.CheckCoverageResponse) and reply.decision.covered
    answer = call(srv, "ReleaseUsage", pb.ReleaseUsageRequest(ticket_id="T-never", reason=value))
    assert answer[:2] == (grpc.StatusCode.NOT_FOUND, "ticket_id")


@pytest.mark.parametrize("value", ["tab\tid", "two\nlines", "\u2028", "\u202eevil", "\u2066x"])
def test_identifiers_are_one_printable_line(srv, value):
    refused(srv, "GetContractStatus", pb.GetContractStatusRequest(contract_id=value),
            "contract_id")
    refused(srv, "CheckCoverage", pb.CheckCoverageRequest(ticket=ticket(value)),
            "ticket.ticket_id")


@pytest.mark.parametrize(
    "value", ["Société Générale", "株式会社", "شرکت\u200cنمونه", "👩\u200d💻", " "]
)
def test_identifiers_may_hold_any_other_text(srv, value):
    """Accented, CJK, ZWNJ (Persian), ZWJ (emoji): not refused, and simply match nothing."""
    answer = call(srv, "CheckCoverage", pb.CheckCoverageRequest(ticket=ticket("T-x", value)))
    assert answer.decision.reason == pb.COVERAGE_REASON_NO_CONTRACT


def test_an_attribute_key_with_a_control_character_names_the_map(srv):
    msg = ticket("T-key")
    msg.attributes["ti\x00er"].string_value = "gold"
    details = refused(srv, "CheckCoverage", pb.CheckCoverageRequest(ticket=msg),
                      "ticket.attributes")
    assert "'ti\\x00er'" in details


def test_a_ticket_with_nul_is_refused_before_anything_is_counted(srv):
    msg = ticket("T-\x00", "globex", "mail")
    refused(srv, "CheckCoverage", pb.CheckCoverageRequest(ticket=msg, consume=True),
            "ticket.ticket_id")
    status = call(srv, "GetContractStatus", pb.GetContractStatusRequest(
        contract_id="globex-mail-pack"))
    assert status.contract.quota.used == 0


# --- cursors -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ListAlerts", "WatchAlerts"])
@pytest.mark.parametrize("cursor", [2**63, 2**63 + 1, 2**64 - 1])
def test_cursors_past_the_stores_integers_are_refused(srv, method, cursor):
    request = getattr(pb, f"{method}Request")(after_cursor=cursor)
    details = refused(srv, method, request, "after_cursor")
    assert "9223372036854775807" in details


def test_the_largest_cursor_is_an_empty_page(srv):
    page = call(srv, "ListAlerts", pb.ListAlertsRequest(after_cursor=2**63 - 1))
    assert list(page.alerts) == [] and page.next_cursor == 2**63 - 1
    assert call(srv, "WatchAlerts", pb.WatchAlertsRequest(after_cursor=2**63 - 1)) is None


# --- instants ------------------------------------------------------------------------------


@pytest.mark.parametrize("contract_id", OPEN_ENDED_PER_PERIOD)
def test_at_late_in_9999_on_open_ended_per_period_contracts(srv, contract_id):
    reply = call(srv, "GetContractStatus",
                 pb.GetContractStatusRequest(contract_id=contract_id, at=LAST))
    assert isinstance(reply, pb.GetContractStatusResponse), reply
    quota = reply.contract.quota
    assert reply.contract.lifecycle == pb.LIFECYCLE_ACTIVE
    assert not quota.HasField("period_end")  # the next reset would be in year 10000
    assert quota.period_start.ToDatetime(UTC).year in (9998, 9999)
    assert reply.as_of.seconds == LAST.seconds


def test_list_contracts_late_in_9999(srv):
    reply = call(srv, "ListContracts", pb.ListContractsRequest(at=LAST, page_size=1000))
    assert isinstance(reply, pb.ListContractsResponse), reply
    states = {c.contract_id: c.lifecycle for c in reply.contracts}
    assert all(states[c] == pb.LIFECYCLE_ACTIVE for c in OPEN_ENDED_PER_PERIOD)


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(946684799, 0), (-62135596800, 0), (-62135596801, 0), (253402300800, 0), (2**63 - 1, 0),
     (-(2**63), 0), (1781517600, -1), (1781517600, 10**9)],
)
@pytest.mark.parametrize(
    ("method", "request_of", "field"),
    [
        ("GetContractStatus",
         lambda ts: pb.GetContractStatusRequest(contract_id="acme-hours", at=ts), "at"),
        ("ListContracts", lambda ts: pb.ListContractsRequest(at=ts), "at"),
        ("ListContracts", lambda ts: pb.ListContractsRequest(ends_before=ts), "ends_before"),
        ("RecordUsage", lambda ts: pb.RecordUsageRequest(
            ticket_id="T-1", amount=1, unit="hours", idempotency_key="K", recorded_at=ts),
         "recorded_at"),
    ],
)
def test_instants_outside_the_accepted_range_are_refused(srv, seconds, nanos, method,
                                                        request_of, field):
    refused(srv, method, request_of(Timestamp(seconds=seconds, nanos=nanos)), field)


def test_the_ends_of_the_accepted_range_are_accepted(srv):
    first = Timestamp(seconds=946684800)
    for at in (first, LAST):
        reply = call(srv, "ListContracts", pb.ListContractsRequest(at=at, ends_before=at))
        assert isinstance(reply, pb.ListContractsResponse), reply


# --- enums and numbers ---------------------------------------------------------------------


def test_unknown_enum_values_are_refused_naming_the_field(srv):
    details = refused(srv, "ListContracts", pb.ListContractsRequest(lifecycle=99), "lifecycle")
    assert "LIFECYCLE_ACTIVE" in details
    refused(srv, "ListAlerts", pb.ListAlertsRequest(filter=pb.AlertFilter(kinds=[1, -5])),
            "filter.kinds")
    refused(srv, "WatchAlerts", pb.WatchAlertsRequest(filter=pb.AlertFilter(kinds=[77])),
            "filter.kinds")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_in_every_number_field(srv, value):
    msg = ticket("T-n")
    msg.attributes["license_count"].number_value = value
    refused(srv, "CheckCoverage", pb.CheckCoverageRequest(ticket=msg),
            "ticket.attributes.license_count")
    request = pb.RecordUsageRequest(ticket_id="T-1", amount=value, unit="hours",
                                    idempotency_key="K")
    refused(srv, "RecordUsage", request, "amount")


@pytest.mark.parametrize("value", [1e308, -1e308, 5e-324, -0.0])
def test_extreme_finite_attribute_numbers_are_decided(srv, value):
    msg = ticket("T-big", "initech", "analytics")
    msg.attributes["license_count"].number_value = value
    reply = call(srv, "CheckCoverage", pb.CheckCoverageRequest(ticket=msg))
    assert isinstance(reply, pb.CheckCoverageResponse), reply


@pytest.mark.parametrize("size", [-1, -(2**31)])
def test_negative_page_sizes_are_refused(srv, size):
    refused(srv, "ListContracts", pb.ListContractsRequest(page_size=size), "page_size")
    refused(srv, "ListAlerts", pb.ListAlertsRequest(page_size=size), "page_size")


def test_huge_page_sizes_are_capped(srv):
    reply = call(srv, "ListContracts", pb.ListContractsRequest(page_size=2**31 - 1))
    assert isinstance(reply, pb.ListContractsResponse) and len(reply.contracts) > 0


# --- JSON: what the binary wire cannot carry -------------------------------------------------


@pytest.mark.parametrize(("method", "path", "attrs"), STRING_FIELDS,
                         ids=[f"{m}.{p}" for m, p, _ in STRING_FIELDS])
def test_a_lone_surrogate_in_json_names_its_field(method, path, attrs):
    descriptor = SERVICE.methods_by_name[method]
    request = valid_request(descriptor)
    _set(request, attrs, "MARK")
    body = json_format.MessageToJson(request).replace("MARK", "\\ud800")
    assert "\\ud800" in body
    with pytest.raises(Failure) as info:
        request_from_json(body, message_factory.GetMessageClass(descriptor.input_type)())
    expected = "ticket.attributes.k" if path.startswith("ticket.attributes.") else path
    assert (info.value.code, info.value.field) == (Code.INVALID_ARGUMENT, expected)


@pytest.mark.parametrize(
    ("message", "body", "field"),
    [
        (pb.ReleaseUsageRequest, b'{"ticketId": "\xff"}', "body"),
        (pb.ReleaseUsageRequest, '{"ticketId": 5', "body"),
        (pb.ReleaseUsageRequest, '{"\\udc00": "x"}', "body"),
        (pb.ListAlertsRequest, '{"afterCursor": "18446744073709551616"}', "after_cursor"),
        (pb.ListAlertsRequest, '{"filter": {"kinds": ["NOPE"]}}', "filter.kinds"),
        (pb.ListAlertsRequest, '{"filter": {"kinds": ["\\ud800"]}}', "filter.kinds"),
    ],
)
def test_json_that_cannot_be_read_is_invalid_argument(message, body, field):
    with pytest.raises(Failure) as info:
        request_from_json(body, message())
    assert (info.value.code, info.value.field) == (Code.INVALID_ARGUMENT, field)


def test_json_and_binary_requests_are_the_same_message():
    request = pb.CheckCoverageRequest(ticket=with_subject(ticket("T-j", tier="gold"), "a\tb"))
    body = json.dumps(json_format.MessageToDict(request))
    assert request_from_json(body, pb.CheckCoverageRequest()) == request


# --- the stores' own refusals: what the edge keeps from them --------------------------------


def test_a_store_refuses_what_it_cannot_hold_as_value_not_storable(store_url):
    store = open_store(store_url)
    try:
        if store.backend == "postgresql":  # SQLite holds NUL; PostgreSQL text cannot
            with pytest.raises(ValueNotStorable):
                store.release("T-1", reason="a\x00b", at=NOW)
        else:  # PostgreSQL compares a bigint with a larger numeric; SQLite cannot bind it
            with pytest.raises(ValueNotStorable):
                store.alerts(AlertQuery(after_cursor=2**63))
        with pytest.raises(ValueNotStorable):
            store.ticket_usage("lone \ud800")
    finally:
        store.close()
    assert classify(ValueNotStorable("x")).code == Code.INVALID_ARGUMENT
    assert classify(StoreError("the store is closed")).code == Code.UNAVAILABLE


def test_a_ticket_decided_at_the_edge_of_the_created_at_range(srv):
    """created_at: from 2000-01-01 to one day after server time, inclusive."""
    early = ticket("T-2000", created_at=datetime(2000, 1, 1, tzinfo=UTC))
    assert isinstance(call(srv, "CheckCoverage", pb.CheckCoverageRequest(ticket=early)),
                      pb.CheckCoverageResponse)
    late = ticket("T-late")
    late.created_at.CopyFrom(timestamp(NOW))
    late.created_at.seconds += 86400 + 1
    refused(srv, "CheckCoverage", pb.CheckCoverageRequest(ticket=late), "ticket.created_at")
