"""Protocol conformance: the generated Connect client (connectrpc, pyqwest) against the HTTP
face, and one bad request answered with the same code over gRPC and over HTTP."""

from __future__ import annotations

import grpc
import pytest
from connectrpc.code import Code as ConnectCode
from connectrpc.compat import google_protobuf_json_codec
from connectrpc.errors import ConnectError
from test_server_harness import in_process, make_bundle, ticket

from entitle.server.alerts import sweeper_of
from entitle.server.faces.http.status import CONNECT_CODES
from entitle.server.service.failures import Code
from entitle.v1 import entitle_pb2 as pb
from entitle.v1.entitle_connect import EntitlementServiceClientSync


@pytest.fixture
def srv(tmp_path, store_url):
    with in_process(make_bundle(tmp_path), store_url, http=True) as server:
        yield server


@pytest.fixture(params=["proto", "json"])
def client(request, srv):
    codec = google_protobuf_json_codec() if request.param == "json" else None
    extra = {"codec": codec} if codec else {}
    with EntitlementServiceClientSync(srv.base_url, **extra) as c:
        yield c


def test_the_connect_client_calls_every_method(client, srv):
    admitted = client.check_coverage(
        pb.CheckCoverageRequest(ticket=ticket("K-1", "acme", "sync"), consume=True)
    )
    assert admitted.admitted and admitted.decision.contract_id == "acme-hours"
    recorded = client.record_usage(
        pb.RecordUsageRequest(ticket_id="K-1", amount=2, unit="hours", idempotency_key="k")
    )
    assert recorded.quota.used == 2
    status = client.get_contract_status(
        pb.GetContractStatusRequest(contract_id="acme-hours"), use_get=True
    )
    assert status.contract.quota.used == 2
    listed = client.list_contracts(pb.ListContractsRequest(customer_id="acme"), use_get=True)
    assert "acme-hours" in {c.contract_id for c in listed.contracts}
    info = client.server_info(pb.ServerInfoRequest(), use_get=True)
    assert info.policy_revision == srv.runtime.holder.serving().revision
    assert client.ping(pb.PingRequest(), use_get=True) == pb.PingResponse()
    assert client.reload(pb.ReloadRequest()).changed is False
    released = client.release_usage(pb.ReleaseUsageRequest(ticket_id="K-1"))
    assert [r.amount for r in released.released] == [2]
    assert sweeper_of(srv.runtime).wait_sweeps(1)
    alerts = client.list_alerts(pb.ListAlertsRequest(page_size=2), use_get=True).alerts
    stream = client.watch_alerts(pb.WatchAlertsRequest(), timeout_ms=10_000)
    streamed = [next(stream).alert, next(stream).alert]
    stream.close()
    assert streamed == list(alerts)
    resumed = client.watch_alerts(pb.WatchAlertsRequest(after_cursor=alerts[0].cursor))
    assert next(resumed).alert == alerts[1]
    resumed.close()


def test_the_connect_client_sees_our_errors_as_connect_errors(client, monkeypatch, srv):
    with pytest.raises(ConnectError) as info:
        client.get_contract_status(pb.GetContractStatusRequest(contract_id="nope"))
    assert info.value.code is ConnectCode.NOT_FOUND
    assert info.value.message.startswith("contract_id: ")
    with pytest.raises(ConnectError) as info:
        next(client.watch_alerts(pb.WatchAlertsRequest(filter=pb.AlertFilter(kinds=[99]))))
    assert info.value.code is ConnectCode.INVALID_ARGUMENT

    import time

    def slow(request, call):
        time.sleep(2)
        return pb.PingResponse()

    monkeypatch.setattr(srv.calls, "ping", slow)
    with pytest.raises(ConnectError) as info:
        client.ping(pb.PingRequest(), timeout_ms=100)
    assert info.value.code is ConnectCode.DEADLINE_EXCEEDED


BAD_REQUESTS = [
    ("CheckCoverage", pb.CheckCoverageRequest()),
    ("CheckCoverage", pb.CheckCoverageRequest(ticket=ticket("B-1", priority="critical"))),
    ("RecordUsage", pb.RecordUsageRequest(ticket_id="x", amount=-1, unit="hours",
                                          idempotency_key="k")),
    ("RecordUsage", pb.RecordUsageRequest(ticket_id="never", amount=1, unit="hours",
                                          idempotency_key="k")),
    ("ReleaseUsage", pb.ReleaseUsageRequest(ticket_id="")),
    ("GetContractStatus", pb.GetContractStatusRequest(contract_id="nope")),
    ("ListContracts", pb.ListContractsRequest(page_token="garbage")),
    ("ListContracts", pb.ListContractsRequest(lifecycle=42)),
    ("ListAlerts", pb.ListAlertsRequest(page_size=-1)),
    ("ListAlerts", pb.ListAlertsRequest(filter=pb.AlertFilter(kinds=[0]))),
]


@pytest.mark.parametrize(("method", "request_msg"), BAD_REQUESTS,
                         ids=[f"{m}-{i}" for i, (m, _) in enumerate(BAD_REQUESTS)])
def test_a_bad_request_gets_the_same_code_and_message_over_grpc_and_http(
    srv, method, request_msg
):
    with pytest.raises(grpc.RpcError) as over_grpc:
        getattr(srv.stub, method)(request_msg, timeout=10)
    with EntitlementServiceClientSync(srv.base_url) as client:
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in method).lstrip("_")
        with pytest.raises(ConnectError) as over_http:
            getattr(client, snake)(request_msg)
    grpc_code = Code[over_grpc.value.code().name]
    assert grpc_code is not Code.INTERNAL
    assert over_http.value.code is CONNECT_CODES[grpc_code]
    assert over_http.value.message == over_grpc.value.details()
