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
