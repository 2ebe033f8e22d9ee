"""The HTTP face over a real port with a real HTTP client (httpx): the Connect protocol's JSON
and binary forms of every RPC, complete answers, error bodies and statuses, auth, limits."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import httpx
import pytest
from test_server_harness import NOW, in_process, make_bundle, ticket

from entitle.server.service import jsonwire
from entitle.v1 import entitle_pb2 as pb

PREFIX = "/entitle.v1.EntitlementService/"
JSON = {"content-type": "application/json"}
PROTO = {"content-type": "application/proto"}


@pytest.fixture
def bundle(tmp_path):
    return make_bundle(tmp_path)


@pytest.fixture
def srv(bundle, store_url):
    with in_process(bundle, store_url, http=True) as server:
        yield server


@pytest.fixture
def client(srv):
    with httpx.Client(base_url=srv.base_url, timeout=10) as c:
        yield c


def post(client: httpx.Client, method: str, body: dict, headers: dict | None = None):
    return client.post(
        PREFIX + method, content=json.dumps(body), headers={**JSON, **(headers or {})}
    )


def ticket_json(ticket_id: str, customer: str = "globex", product: str = "mail",
                priority: str = "high", **extra) -> dict:
    return {"ticketId": ticket_id, "customerId": customer, "product": product,
            "priority": priority, "createdAt": NOW.isoformat().replace("+00:00", "Z"), **extra}


def test_ping_and_a_covered_read_in_json(client):
    assert post(client, "Ping", {}).json() == {}
    reply = post(client, "CheckCoverage", {"ticket": ticket_json("T-1", "acme", "backup")})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    d = reply.json()["decision"]
    assert d["covered"] is True and d["reason"] == "COVERAGE_REASON_COVERED"
    assert d["contractId"] == "acme-backup"
    assert d["decidedAt"] == "2026-06-15T10:00:00Z"
    assert reply.json()["admitted"] is False and reply.json()["duplicate"] is False


def test_a_not_covered_ticket_is_200_with_every_default_printed(client):
    reply = post(client, "CheckCoverage", {"ticket": ticket_json("T-2", "nobody", "mail")})
    assert reply.status_code == 200
    body = reply.json()
    d = body["decision"]
    assert d["covered"] is False  # printed although it is the default
    assert d["reason"] == "COVERAGE_REASON_NO_CONTRACT"
    assert d["contractId"] == "" and d["targets"] == [] and d["warnings"] == []
    assert body["admitted"] is False and body["duplicate"] is False


def test_binary_form_answers_the_same_message(client):
    request = pb.CheckCoverageRequest(ticket=ticket("T-3", "acme", "backup"))
    reply = client.post(PREFIX + "CheckCoverage", content=request.SerializeToString(),
                        headers=PROTO)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/proto"
    binary = pb.CheckCoverageResponse.FromString(reply.content)
    as_json = post(client, "CheckCoverage", {"ticket": ticket_json("T-3", "acme", "backup")})
    assert jsonwire.to_dict(binary) == as_json.json()


def test_a_bad_field_is_invalid_argument_400_naming_it(client):
    t = ticket_json("T-4")
    t["priority"] = "critical"
    reply = post(client, "CheckCoverage", {"ticket": t})
    assert reply.status_code == 400
    assert reply.json()["code"] == "invalid_argument"
    assert reply.json()["message"].startswith("ticket.priority: ")
    assert reply.headers["entitle-field"] == "ticket.priority"


def test_a_request_id_is_echoed_or_made(client):
    assert post(client, "Ping", {}, {"x-request-id": "req-42"}).headers["x-request-id"] == "req-42"
    made = post(client, "Ping", {}, {"x-request-id": "bad id with spaces"}).headers["x-request-id"]
    assert made != "bad id with spaces" and len(made) == 32


def test_get_for_side_effect_free_methods_only(client):
    message = base64.urlsafe_b64encode(b'{"contractId": "acme-backup"}').decode().rstrip("=")
    reply = client.get(PREFIX + "GetContractStatus",
                       params={"encoding": "json", "base64": "1", "message": message})
    assert reply.status_code == 200
    assert reply.json()["contract"]["contractId"] == "acme-backup"
    refused = client.get(PREFIX + "CheckCoverage", params={"encoding": "json", "message": "{}"})
    assert refused.status_code == 405


def test_created_at_may_be_omitted(client):
    t = ticket_json("T-5")
    del t["createdAt"]
    reply = post(client, "CheckCoverage", {"ticket": t})
    assert reply.status_code == 200 and reply.json()["decision"]["covered"] is True
    at = datetime.fromisoformat(reply.json()["decision"]["decidedAt"].replace("Z", "+00:00"))
    assert at == NOW.astimezone(UTC)


def test_health_and_readiness(client, srv):
    assert client.get("/healthz").json() == {"live": True}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["policyRevision"] == srv.runtime.holder.serving().revision


# --- every method, JSON and binary ------------------------------------------------------------
def call_both(client, method: str, request, response_type):
    """The method called in JSON and in binary: both answers, as messages."""
    as_json = client.post(PREFIX + method, content=jsonwire.to_json(request), headers=JSON)
    assert as_json.status_code == 200, as_json.text
    as_binary = client.post(PREFIX + method, content=request.SerializeToString(), headers=PROTO)
    assert as_binary.status_code == 200, as_binary.text
    return (jsonwire.from_json(as_json.content, response_type()),
            response_type.FromString(as_binary.content), as_json.json())


def test_every_unary_method_in_both_forms(client, srv):
    admitted, again, body = call_both(
        client, "CheckCoverage",
        pb.CheckCoverageRequest(ticket=ticket("E-1", "acme", "sync"), consume=True),
        pb.CheckCoverageResponse,
    )
    assert admitted.admitted and again.duplicate and body["duplicate"] is False
    first, retried, body = call_both(
        client, "RecordUsage",
        pb.RecordUsageRequest(ticket_id="E-1", amount=1.5, unit="hours", idempotency_key="k1"),
        pb.RecordUsageResponse,
    )
    assert first.contract_id == "acme-hours" and not first.duplicate and retried.duplicate
    assert body["quota"]["used"] == 1.5 and body["quota"]["unlimited"] is False
    status, status_b, body = call_both(
        client, "GetContractStatus", pb.GetContractStatusRequest(contract_id="acme-hours"),
        pb.GetContractStatusResponse,
    )
    assert status == status_b and body["contract"]["lifecycle"] == "LIFECYCLE_ACTIVE"
    listed, listed_b, body = call_both(
        client, "ListContracts", pb.ListContractsRequest(customer_id="acme"),
        pb.ListContractsResponse,
    )
    assert listed == listed_b and {c.contract_id for c in listed.contracts} >= {"acme-hours"}
    assert body["nextPageToken"] == ""
    info, _, body = call_both(client, "ServerInfo", pb.ServerInfoRequest(),
                              pb.ServerInfoResponse)
    assert info.policy_revision == srv.runtime.holder.serving().revision
    assert body["lastReloadError"] == ""
    _, _, body = call_both(client, "Reload", pb.ReloadRequest(), pb.ReloadResponse)
    assert body["changed"] is False and body["error"] == ""
    assert call_both(client, "Ping", pb.PingRequest(), pb.PingResponse)[2] == {}
    alerts, alerts_b, body = call_both(client, "ListAlerts", pb.ListAlertsRequest(),
                                       pb.ListAlertsResponse)
    assert alerts == alerts_b and "hasMore" in body and "nextCursor" in body
    released, released_b, body = call_both(
        client, "ReleaseUsage", pb.ReleaseUsageRequest(ticket_id="E-1"), pb.ReleaseUsageResponse
    )
    assert released.released and not released_b.released  # the second release is empty
    assert body["released"] == [
        {"contractId": "acme-hours", "unit": "hours", "amount": 1.5}
    ]


def test_json_accepts_the_protos_snake_case_names(client):
    reply = post(client, "CheckCoverage", {"ticket": {
        "ticket_id": "S-1", "customer_id": "acme", "product": "backup", "priority": "low",
        "created_at": "2026-06-15T10:00:00Z"}})
    assert reply.status_code == 200 and reply.json()["decision"]["covered"] is True


# --- errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "body", "status", "code", "field"),
    [
        ("CheckCoverage", {}, 400, "invalid_argument", "ticket"),
        ("GetContractStatus", {"contractId": "nope"}, 404, "not_found", "contract_id"),
        ("RecordUsage", {"ticketId": "x", "amount": 1, "unit": "hours",
                         "idempotencyKey": "k"}, 404, "not_found", "ticket_id"),
        ("ListContracts", {"pageToken": "garbage"}, 400, "invalid_argument", "page_token"),
        ("ListAlerts", {"pageSize": -1}, 400, "invalid_argument", "page_size"),
    ],
)
def test_errors_are_connect_bodies_with_the_protocols_status(client, method, body, status,
                                                             code, field):
    reply = post(client, method, body)
    assert reply.status_code == status, reply.text
    error = reply.json()
    assert error["code"] == code and error["message"].startswith(f"{field}: ")
    assert reply.headers["entitle-field"] == field
    assert reply.headers["content-type"] == "application/json"


def test_a_conflicting_record_is_already_exists_409(client):
    record = {"ticketId": "C-1", "contractId": "acme-hours", "amount": 1, "unit": "hours",
              "idempotencyKey": "same"}
    assert post(client, "RecordUsage", record).status_code == 200
    reply = post(client, "RecordUsage", {**record, "amount": 2})
    assert (reply.status_code, reply.json()["code"]) == (409, "already_exists")


def test_a_json_field_that_cannot_be_read_is_named(client):
    typo = post(client, "CheckCoverage", {"ticket": {"ticketID": "T-1"}})
    assert typo.status_code == 400 and typo.json()["code"] == "invalid_argument"
    assert typo.json()["message"].startswith("ticket: ") and "ticketID" in typo.json()["message"]
    assert typo.headers["entitle-field"] == "ticket"
    wrong_type = post(client, "CheckCoverage", {"ticket": {"priority": 3}})
    assert wrong_type.headers["entitle-field"] == "ticket.priority"
    not_json = client.post(PREFIX + "Ping", content=b"{not", headers=JSON)
    assert not_json.status_code == 400 and not_json.headers["entitle-field"] == "body"


def test_malformed_bodies_are_invalid_argument(client):
    for content, headers in ((b"{not json", JSON), (b"\xff\xff\xff", PROTO),
                             (b'{"ticket": {"priority": 3}}', JSON)):
        reply = client.post(PREFIX + "CheckCoverage", content=content, headers=headers)
        assert reply.status_code == 400 and reply.json()["code"] == "invalid_argument"


def test_unknown_paths_and_media_types(client):
    assert client.post(PREFIX + "Nope", content=b"{}", headers=JSON).status_code == 404
    assert client.get("/nope").status_code == 404
    reply = client.post(PREFIX + "Ping", content=b"{}", headers={"content-type": "text/plain"})
    assert reply.status_code == 415


def test_an_unexpected_failure_is_internal_500_with_an_error_id(client, srv, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(srv.calls, "list_contracts", broken)
    reply = post(client, "ListContracts", {})
    assert reply.status_code == 500 and reply.json()["code"] == "internal"
    assert "error id" in reply.json()["message"] and "boom" not in reply.json()["message"]
    assert post(client, "Ping", {}).status_code == 200


# --- limits -----------------------------------------------------------------------------------
def test_an_oversized_body_is_resource_exhausted(bundle, store_url):
    with in_process(bundle, store_url, http=True, config={"max_message_bytes": 2048}) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=10) as client:
        t = ticket_json("O-1", subject="x" * 4096)
        reply = post(client, "CheckCoverage", {"ticket": t})
        assert reply.status_code == 429 and reply.json()["code"] == "resource_exhausted"
        assert "2048" in reply.json()["message"]
        small = post(client, "CheckCoverage", {"ticket": ticket_json("O-2", subject="ok")})
        assert small.status_code == 200


def slow(seconds: float):
    import time

    def sleeping(request, call):
        time.sleep(seconds)
        return pb.PingResponse()

    return sleeping


def test_the_clients_deadline_ends_a_call_as_deadline_exceeded(client, srv, monkeypatch):
    monkeypatch.setattr(srv.calls, "ping", slow(2.0))
    reply = post(client, "Ping", {}, {"connect-timeout-ms": "100"})
    assert reply.status_code == 504 and reply.json()["code"] == "deadline_exceeded"


def test_the_servers_cap_ends_a_call_without_a_deadline(bundle, store_url, monkeypatch):
    with in_process(bundle, store_url, http=True, config={"max_call_seconds": 0.2}) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=10) as client:
        monkeypatch.setattr(srv.calls, "ping", slow(2.0))
        reply = post(client, "Ping", {})
        assert reply.status_code == 504 and reply.json()["code"] == "deadline_exceeded"
        assert "server's limit of 0.2 s" in reply.json()["message"]


def test_the_deadline_reaches_the_implementation(client, srv, monkeypatch):
    seen = []

    def ping(request, call):
        seen.append(call.time_remaining())
        return pb.PingResponse()

    monkeypatch.setattr(srv.calls, "ping", ping)
    post(client, "Ping", {}, {"connect-timeout-ms": "5000"})
    post(client, "Ping", {})
    assert 0 < seen[0] <= 5 and 5 < seen[1] <= 30  # the client's, then the 30 s cap


# --- metrics and the decision log ---------------------------------------------------------------
def samples(method: str, code: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(
        "entitle_rpc_duration_seconds_count", {"method": PREFIX + method, "code": code}
    )
    return value or 0.0


def test_calls_are_measured_with_the_grpc_labels(client):
    before_ok, before_bad = samples("Ping", "OK"), samples("CheckCoverage", "INVALID_ARGUMENT")
    post(client, "Ping", {})
    post(client, "CheckCoverage", {})
    assert samples("Ping", "OK") == before_ok + 1
    assert samples("CheckCoverage", "INVALID_ARGUMENT") == before_bad + 1


def test_decisions_are_logged_with_the_http_request_id(bundle, store_url, tmp_path):
    log = tmp_path / "decisions.ndjson"
    with in_process(bundle, store_url, http=True, config={"decision_log": str(log)}) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=10) as client:
        reply = post(client, "CheckCoverage", {"ticket": ticket_json("L-1"), "consume": True},
                     {"x-request-id": "http-req-1"})
        assert reply.json()["admitted"] is True
    (line,) = [json.loads(x) for x in log.read_text().splitlines()]
    assert line["request_id"] == "http-req-1" and line["ticket"]["ticket_id"] == "L-1"


# --- readiness, the command line, workers -------------------------------------------------------
def test_readiness_follows_the_policy_and_draining(tmp_path, store_url):
    bundle = make_bundle(tmp_path)
    good = (bundle / "plans.yaml").read_text()
    (bundle / "plans.yaml").write_text(good + "\n---\nkind: Plan\nid: [broken\n")
    with in_process(bundle, store_url, http=True) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=10) as client:
        refused = client.get("/readyz")
        assert refused.status_code == 503 and refused.json()["ready"] is False
        assert refused.json()["policyRevision"] == ""
        assert "plans.yaml" in refused.json()["lastReloadError"]
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        failed = post(client, "CheckCoverage", {"ticket": ticket_json("R-1")})
        assert (failed.status_code, failed.json()["code"]) == (400, "failed_precondition")
        (bundle / "plans.yaml").write_text(good)
        assert post(client, "Reload", {}).json()["changed"] is True
        assert client.get("/readyz").status_code == 200
        srv.http.app.readiness.drain()  # what SIGTERM does first (runtime.on_drain)
        draining = client.get("/readyz")
        assert draining.status_code == 503 and draining.json()["draining"] is True


def test_serve_answers_http_on_every_worker_and_drains_on_sigterm(tmp_path):
    import signal

    from test_server_harness import ServerProcess, wait_for

    bundle = make_bundle(tmp_path)
    log = tmp_path / "serve.log"
    server = ServerProcess(bundle, f"sqlite:///{tmp_path / 'e.db'}", log, workers=2)
    with server:
        base = f"http://127.0.0.1:{server.http_port}"
        assert f"HTTP on http://127.0.0.1:{server.http_port}" in log.read_text()
        pids = set()

        def both_workers_answer() -> bool:
            with httpx.Client(base_url=base, timeout=10) as c:  # a new connection each time
                pids.add(post(c, "ServerInfo", {}).json()["pid"])
            return len(pids) == 2

        wait_for(both_workers_answer, timeout=30, interval=0)
        with httpx.Client(base_url=base, timeout=10) as c:
            assert post(c, "CheckCoverage", {"ticket": ticket_json("W-1")}).json()["decision"][
                "covered"] is True
        server.signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
    assert log.read_text().count('"http": "127.0.0.1:') >= 2  # each worker listened


def test_no_http_serves_grpc_only(tmp_path):
    from test_server_harness import ServerProcess

    bundle = make_bundle(tmp_path)
    log = tmp_path / "serve.log"
    with ServerProcess(bundle, f"sqlite:///{tmp_path / 'e.db'}", log,
                       extra_args=("--no-http",)) as server:
        assert server.http_port is None
        assert '"http": "off"' in log.read_text()


def test_an_http_port_in_use_is_refused_in_one_line(tmp_path):
    import socket
    import subprocess
    import sys

    from test_server_harness import REPO

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "entitle", "serve", "--policies", str(make_bundle(tmp_path)),
             "--store", f"sqlite:///{tmp_path / 'e.db'}", "--listen", "127.0.0.1:0",
             "--http", f"127.0.0.1:{port}", "--workers", "1"],
            capture_output=True, text=True, timeout=60, cwd=REPO,
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_the_dashboard_package_is_mounted_on_the_listener(bundle, store_url, monkeypatch):
    """The hook the dashboard uses: `entitle.server.faces.dashboard.mount(runtime, calls,
    executor)` returns a Starlette Mount that the worker adds at start."""
    import sys
    import types

    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    from entitle.server.faces.http.app import DASHBOARD_MODULE

    seen = {}

    def mount(runtime, calls, executor):
        seen.update(runtime=runtime, calls=calls, executor=executor)

        async def page(request):
            return PlainTextResponse(f"revision {runtime.holder.serving().revision}")

        return Mount("/dashboard", routes=[Route("/", page)])

    fake = types.ModuleType(DASHBOARD_MODULE)
    fake.mount = mount
    monkeypatch.setitem(sys.modules, DASHBOARD_MODULE, fake)
    with in_process(bundle, store_url, http=True) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=10) as client:
        reply = client.get("/dashboard/")
        assert reply.status_code == 200
        assert reply.text == f"revision {srv.runtime.holder.serving().revision}"
        assert seen["calls"] is srv.calls and seen["executor"] is srv.http.executor
        assert post(client, "Ping", {}).status_code == 200  # the API is still served


def test_a_call_in_flight_finishes_when_the_worker_drains(srv, monkeypatch):
    import threading
    import time

    started = threading.Event()

    def ping(request, call):
        started.set()
        time.sleep(0.5)
        return pb.PingResponse()

    monkeypatch.setattr(srv.calls, "ping", ping)
    replies = []

    def call():
        with httpx.Client(base_url=srv.base_url, timeout=10) as c:
            replies.append(post(c, "Ping", {}))

    caller = threading.Thread(target=call)
    caller.start()
    assert started.wait(10)
    srv.runtime.begin_shutdown()  # what SIGTERM does: readiness first, then the listeners
    srv.http.stop()
    caller.join(10)
    assert [r.status_code for r in replies] == [200]
    with pytest.raises(httpx.TransportError):  # no longer listening
        httpx.post(srv.base_url + PREFIX + "Ping", content=b"{}", headers=JSON, timeout=2)


def test_ticket_events_and_sla_clocks_over_http(client):
    """The SLA RPCs are on this face too: an admission, then events, then the clocks (GET)."""
    ticket = {**ticket_json("SLA-1", product="sync"),  # premium: pauses on pending
              "createdAt": "2026-06-15T09:00:00Z"}  # NOW is 10:00
    admitted = post(client, "CheckCoverage", {"ticket": ticket, "consume": True})
    assert admitted.json()["admitted"] is True
    events = post(client, "RecordTicketEvents", {"ticketId": "SLA-1", "events": [
        {"id": "e1", "type": "agent_reply", "at": "2026-06-15T09:30:00Z"},
        {"id": "e1", "type": "agent_reply", "at": "2026-06-15T09:30:00Z"},
        {"id": "e2", "type": "status_changed", "status": "pending", "at": "2026-06-15T09:40:00Z"},
    ]})
    assert events.status_code == 200, events.text
    body = events.json()
    assert [e["duplicate"] for e in body["events"]] == [False, True, False]
    assert body["sla"]["ticketId"] == "SLA-1" and body["sla"]["eventCount"] == 2
    message = base64.urlsafe_b64encode(b'{"ticketId": "SLA-1"}').decode().rstrip("=")
    clocks = client.get(PREFIX + "GetTicketSla",
                        params={"encoding": "json", "base64": "1", "message": message})
    assert clocks.status_code == 200, clocks.text
    by_metric = {c["metric"]: c for c in clocks.json()["sla"]["clocks"]}
    assert by_metric["first_response"]["state"] == "CLOCK_STATE_MET"  # the reply met it
    # the pause resolution is in has no end yet
    assert by_metric["resolution"]["state"] == "CLOCK_STATE_PAUSED"
    assert by_metric["resolution"]["pauses"] == [{"start": "2026-06-15T09:40:00Z"}]
    assert by_metric["first_response"]["pauses"] == []  # first replies never pause
    missing = post(client, "GetTicketSla", {"ticketId": "never-admitted"})
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert missing.headers["entitle-field"] == "ticket_id"
