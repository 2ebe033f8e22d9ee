"""WatchAlerts on the HTTP face, over a real port: Connect server streaming and Server-Sent
Events, each resumed by cursor (SSE by Last-Event-ID) without missing or repeating an alert."""

from __future__ import annotations

import json
import struct
import threading

import httpx
import pytest
from test_server_harness import in_process, make_bundle, ticket, wait_for

from entitle.server.alerts import sweeper_of
from entitle.server.faces.http.sse import SSE_PATH
from entitle.server.service import jsonwire
from entitle.v1 import entitle_pb2 as pb

WATCH = "/entitle.v1.EntitlementService/WatchAlerts"
STREAM_JSON = {"content-type": "application/connect+json"}


@pytest.fixture
def srv(tmp_path, store_url):
    with in_process(make_bundle(tmp_path), store_url, http=True) as server:
        assert sweeper_of(server.runtime).wait_sweeps(1)  # the catch-up sweep's alerts
        yield server


@pytest.fixture
def client(srv):
    with httpx.Client(base_url=srv.base_url, timeout=20) as c:
        yield c


def stored(srv) -> list[pb.Alert]:
    return list(srv.stub.ListAlerts(pb.ListAlertsRequest(page_size=1000), timeout=10).alerts)


def envelope(message: dict, flags: int = 0) -> bytes:
    data = json.dumps(message).encode()
    return struct.pack(">BI", flags, len(data)) + data


def connect_frames(response: httpx.Response):
    """(flags, JSON) of each enveloped message of a Connect stream, as they arrive."""
    buffer = b""
    for chunk in response.iter_bytes():
        buffer += chunk
        while len(buffer) >= 5:
            flags, size = struct.unpack(">BI", buffer[:5])
            if len(buffer) < 5 + size:
                break
            yield flags, json.loads(buffer[5:5 + size])
            buffer = buffer[5 + size:]


def connect_alerts(client, after: int, count: int, **filters) -> list[dict]:
    """The first `count` alerts of a Connect stream after the cursor."""
    out = []
    body = envelope({"afterCursor": str(after), "filter": filters})
    with client.stream("POST", WATCH, content=body, headers=STREAM_JSON) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/connect+json"
        for flags, message in connect_frames(response):
            assert flags == 0, message  # not the end of the stream
            out.append(message["alert"])
            if len(out) == count:
                break
    return out


def test_connect_stream_replays_then_resumes_after_a_cursor(client, srv):
    alerts = stored(srv)
    assert len(alerts) >= 3
    first_two = connect_alerts(client, 0, 2)
    assert [int(a["cursor"]) for a in first_two] == [a.cursor for a in alerts[:2]]
    assert first_two[0] == jsonwire.to_dict(alerts[0])  # complete JSON, defaults printed
    rest = connect_alerts(client, int(first_two[-1]["cursor"]), len(alerts) - 2)
    assert [int(a["cursor"]) for a in rest] == [a.cursor for a in alerts[2:]]


def test_connect_stream_filters_and_errors_end_the_stream(client, srv):
    kinds = connect_alerts(client, 0, 1, kinds=["ALERT_KIND_CONTRACT_EXPIRED"])
    assert kinds[0]["kind"] == "ALERT_KIND_CONTRACT_EXPIRED"
    body = envelope({"filter": {"customerId": "x" * 5000}})
    with client.stream("POST", WATCH, content=body, headers=STREAM_JSON) as response:
        assert response.status_code == 200  # streams report errors in the end message
        ((flags, end),) = list(connect_frames(response))
    assert flags == 2 and end["error"]["code"] == "invalid_argument"
    assert end["error"]["message"].startswith("filter.customer_id: ")


def admit_until_alert(srv, prefix: str, count: int = 5) -> None:
    """Five admissions on the 10-incident pack: the 50 % usage alert."""
    for i in range(count):
        msg = ticket(f"{prefix}-{i}", "globex", "mail")
        reply = srv.stub.CheckCoverage(pb.CheckCoverageRequest(ticket=msg, consume=True))
        assert reply.admitted


def test_connect_stream_delivers_a_new_alert_live(client, srv):
    last = stored(srv)[-1].cursor
    got = []
    reader = threading.Thread(target=lambda: got.extend(connect_alerts(client, last, 1)))
    reader.start()
    admit_until_alert(srv, "LIVE")
    reader.join(20)
    assert got and got[0]["kind"] == "ALERT_KIND_USAGE_THRESHOLD" and got[0]["threshold"] == 50


def sse_events(response: httpx.Response):
    """(id, event, data, comments) of each Server-Sent Event as it arrives."""
    fields: dict = {}
    comments = []
    for line in response.iter_lines():
        if not line:
            if fields:
                yield fields.get("id"), fields.get("event"), fields.get("data"), comments
            fields, comments = {}, []
        elif line.startswith(":"):
            comments.append(line)
            yield None, None, None, [line]
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def sse_alerts(client, count: int, params: dict | None = None, headers: dict | None = None):
    out = []
    with client.stream("GET", SSE_PATH, params=params, headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for event_id, kind, data, _ in sse_events(response):
            if kind == "alert":
                alert = json.loads(data)
                assert event_id == alert["cursor"]  # the event id is the cursor
                out.append(alert)
                if len(out) == count:
                    break
    return out


def test_sse_resumes_with_last_event_id_or_after_cursor(client, srv):
    alerts = stored(srv)
    head = sse_alerts(client, 2)
    assert [int(a["cursor"]) for a in head] == [a.cursor for a in alerts[:2]]
    resumed = sse_alerts(client, len(alerts) - 2, headers={"last-event-id": head[-1]["cursor"]})
    assert [int(a["cursor"]) for a in resumed] == [a.cursor for a in alerts[2:]]
    # Last-Event-ID wins over the URL's after_cursor (EventSource resends the same URL)
    again = sse_alerts(client, 1, params={"after_cursor": "0"},
                       headers={"last-event-id": str(alerts[-2].cursor)})
    assert int(again[0]["cursor"]) == alerts[-1].cursor
    by_param = sse_alerts(client, 1, params={"after_cursor": str(alerts[0].cursor)})
    assert int(by_param[0]["cursor"]) == alerts[1].cursor


def test_sse_filters_by_kind_names_and_customer(client, srv):
    both_spellings = "contract_expired,ALERT_KIND_CONTRACT_EXPIRED"
    expired = sse_alerts(client, 1, params={"kinds": both_spellings})
    assert expired[0]["kind"] == "ALERT_KIND_CONTRACT_EXPIRED"
    customer = stored(srv)[0].customer_id
    mine = sse_alerts(client, 1, params={"customer_id": customer})
    assert mine[0]["customerId"] == customer


@pytest.mark.parametrize(
    ("params", "headers", "field"),
    [
        ({"kinds": "nonsense"}, {}, "kinds"),
        ({"after_cursor": "-1"}, {}, "after_cursor"),
        ({"after_cursor": str(2**64)}, {}, "after_cursor"),
        ({}, {"last-event-id": "abc"}, "Last-Event-ID"),
        ({"customer_id": "x" * 5000}, {}, "filter.customer_id"),
    ],
)
def test_sse_bad_requests_are_400_before_the_stream(client, params, headers, field):
    reply = client.get(SSE_PATH, params=params, headers=headers)
    assert reply.status_code == 400 and reply.json()["code"] == "invalid_argument"
    assert reply.json()["message"].startswith(f"{field}: ")


def test_sse_sends_heartbeats_and_live_alerts(srv, monkeypatch):
    from entitle.server.faces.http import sse

    monkeypatch.setattr(sse, "HEARTBEAT_SECONDS", 0.05)
    last = stored(srv)[-1].cursor
    seen = {"heartbeats": 0, "alert": None}

    def read():
        with httpx.Client(base_url=srv.base_url, timeout=20) as c, \
                c.stream("GET", SSE_PATH, headers={"last-event-id": str(last)}) as response:
            for _, kind, data, comments in sse_events(response):
                seen["heartbeats"] += sum(c == ": heartbeat" for c in comments)
                if kind == "alert":
                    seen["alert"] = json.loads(data)
                    return

    reader = threading.Thread(target=read)
    reader.start()
    wait_for(lambda: seen["heartbeats"] >= 2)
    admit_until_alert(srv, "SSE")
    reader.join(20)
    assert seen["alert"]["threshold"] == 50 and int(seen["alert"]["cursor"]) > last


def subscribers() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("entitle_alert_subscribers") or 0.0


def test_a_client_that_goes_away_ends_its_stream_on_the_server(client, srv):
    """Idle streams (nothing more to send) end when the client disconnects. A Connect stream's
    headers come with its first message (connectrpc), so it is opened one alert back."""
    before = subscribers()
    alerts = stored(srv)
    for path, kwargs in (
        (SSE_PATH, {"headers": {"last-event-id": str(alerts[-1].cursor)}}),
        (WATCH, {"content": envelope({"afterCursor": str(alerts[-2].cursor)}),
                 "headers": STREAM_JSON}),
    ):
        method = "GET" if path == SSE_PATH else "POST"
        with client.stream(method, path, **kwargs) as response:
            assert response.status_code == 200
            chunks = response.iter_bytes()  # kept: a dropped iterator closes the response
            next(chunks)
            wait_for(lambda: subscribers() == before + 1)
        wait_for(lambda: subscribers() == before)
