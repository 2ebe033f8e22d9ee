"""No input crashes a worker: random bytes and random tickets over a real port."""

from __future__ import annotations

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_server_harness import in_process, make_bundle

from entitle.v1 import entitle_pb2 as pb

METHODS = ("CheckCoverage", "RecordUsage", "ReleaseUsage", "GetContractStatus", "ListContracts")
OK_OR_REFUSED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
}

text = st.text(max_size=40)
attribute = st.one_of(
    st.builds(pb.AttributeValue, string_value=text),
    st.builds(pb.AttributeValue, number_value=st.floats(allow_nan=True, allow_infinity=True)),
)
tickets = st.builds(
    pb.Ticket,
    ticket_id=text,
    customer_id=st.sampled_from(["acme", "globex", "", "nobody"]) | text,
    product=st.sampled_from(["backup", "mail", ""]) | text,
    priority=st.sampled_from(["low", "urgent", "critical", ""]),
    subject=text,
    attributes=st.dictionaries(st.text(max_size=10), attribute, max_size=3),
)


def test_random_requests_get_a_status_and_the_worker_stays_up(tmp_path):
    with in_process(make_bundle(tmp_path), f"sqlite:///{tmp_path / 'e.db'}") as srv:
        raw = {
            m: srv.channel.unary_unary(f"/entitle.v1.EntitlementService/{m}")
            for m in METHODS
        }

        @settings(max_examples=150, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(st.sampled_from(METHODS), st.binary(max_size=200))
        def garbage(method, body):
            try:
                raw[method](body, timeout=10)
            except grpc.RpcError as exc:
                assert exc.code() != grpc.StatusCode.UNAVAILABLE, exc.details()

        @settings(max_examples=150, deadline=None)
        @given(tickets, st.integers(-(2**40), 2**40), st.integers(-(10**9), 10**9), st.booleans())
        def random_ticket(ticket, seconds, nanos, consume):
            ticket.created_at.seconds, ticket.created_at.nanos = seconds, max(0, nanos)
            try:
                srv.stub.CheckCoverage(
                    pb.CheckCoverageRequest(ticket=ticket, consume=consume), timeout=10
                )
            except grpc.RpcError as exc:
                assert exc.code() in OK_OR_REFUSED, (exc.code(), exc.details())

        garbage()
        random_ticket()
        assert srv.stub.Ping(pb.PingRequest(), timeout=5) is not None
