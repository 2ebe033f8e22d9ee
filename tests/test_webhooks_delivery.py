"""Alerts pushed to a real HTTP receiver on a real port, against both stores: failures,
timeouts and recovery lose nothing and send nothing twice by event id; signatures verify
with the docs' recipe; a restart, a second replica and dead letters keep that promise.

The server's clock is fixed (the alerts' instants); delivery runs on the real clock, with
back-off in tens of milliseconds. Waits on the wall clock are only for delivery."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from test_alerts import consume, first_sweep, listed
from test_server_harness import (
    ServerProcess,
    free_port,
    health_status,
    in_process,
    make_bundle,
    stub_for,
    ticket,
    wait_for,
)
from webhook_receiver import FAIL, HANG, OK, SECRET, Receiver, docs_verifier, webhooks_file

from entitle.cli import main
from entitle.server.faces.grpc.health import WEBHOOK_METADATA
from entitle.server.service.jsonwire import to_dict
from entitle.server.store import open_store
from entitle.server.webhooks import webhooks_of

verify_webhook = docs_verifier()


@pytest.fixture(autouse=True)
def _secret_env(monkeypatch):
    monkeypatch.setenv("ENTITLE_TEST_WEBHOOK_SECRET", SECRET)


@pytest.fixture
def bundle(tmp_path):
    return make_bundle(tmp_path)


def alerts_of(srv) -> list:
    """The alert log after the first sweep and twelve admissions (usage alerts too)."""
    first_sweep(srv)
    for i in range(12):
        consume(srv.stub, ticket(f"T-{i}"))
    return listed(srv.stub)


def ids(alerts) -> list[str]:
    return [str(a.cursor) for a in alerts]


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_failures_and_timeouts_then_recovery_deliver_each_alert_once_in_order(
    bundle, store_url, tmp_path
):
    def plan(n: int, _request) -> str:  # 3 errors, 2 timeouts, then all is well
        return FAIL if n <= 3 else HANG if n <= 5 else OK

    endpoint = f"recovering-{store_url[:6]}"
    with Receiver(plan, hang_seconds=1.5).running() as receiver:
        hooks = webhooks_file(tmp_path / "hooks.yaml", receiver.url, endpoint=endpoint)
        with in_process(bundle, store_url, config={"webhooks_file": str(hooks)}) as srv:
            alerts = alerts_of(srv)
            wait_for(lambda: len(receiver.accepted()) >= len(alerts), timeout=60)
            time.sleep(0.5)  # anything sent twice would arrive now
            requests = list(receiver.requests)
    assert len(alerts) >= 17
    assert receiver.accepted() == ids(alerts)  # every alert, in cursor order, once
    assert [r.answer for r in requests[:6]] == [FAIL, FAIL, FAIL, HANG, HANG, OK]
    assert {r.event_id for r in requests[:6]} == {str(alerts[0].cursor)}  # retried in place
    for request, alert in zip(receiver.accepted_requests(), alerts, strict=True):
        assert verify_webhook(SECRET, request.headers, request.body)
        assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 120
        assert request.headers["content-type"] == "application/json"
        assert json.loads(request.body) == {"type": "alert", "alert": to_dict(alert)}
    assert metric("entitle_webhook_failures_total", endpoint=endpoint, reason="status") == 3
    assert metric("entitle_webhook_failures_total", endpoint=endpoint, reason="timeout") == 2
    assert metric("entitle_webhook_deliveries_total", endpoint=endpoint) == len(alerts)


def test_a_restart_mid_way_neither_loses_nor_resends_an_alert(bundle, store_url, tmp_path):
    down = threading.Event()  # set: the receiver fails everything after its first three

    def plan(n: int, _request) -> str:
        return OK if n <= 3 or not down.is_set() else FAIL

    down.set()
    with Receiver(plan).running() as receiver:
        hooks = webhooks_file(tmp_path / "hooks.yaml", receiver.url, endpoint="restarted")
        config = {"webhooks_file": str(hooks)}
        with in_process(bundle, store_url, config=config) as srv:
            alerts = alerts_of(srv)
            wait_for(lambda: receiver.answers().count(FAIL) >= 2)
        before = list(receiver.requests)
        store = open_store(store_url)
        try:
            kept = store.webhook_progress_of(["restarted"])["restarted"]
        finally:
            store.close()
        assert kept.cursor == alerts[2].cursor and kept.delivered == 3
        assert kept.attempts >= 2 and kept.attempt_cursor == alerts[3].cursor
        assert kept.last_error == "HTTP 503: busy, try later"
        down.clear()
        with in_process(bundle, store_url, config=config):
            wait_for(lambda: len(receiver.accepted()) >= len(alerts), timeout=60)
            time.sleep(0.5)
    assert receiver.accepted() == ids(alerts)
    after = receiver.requests[len(before):]
    assert str(alerts[2].cursor) not in {r.event_id for r in after}  # delivered: never again
    assert after[0].event_id == str(alerts[3].cursor)  # the restart resumes where it stood


def test_an_alert_never_accepted_becomes_a_dead_letter_and_delivery_moves_on(
    bundle, store_url, tmp_path, capsys
):
    def plan(_n: int, request) -> str:  # the main endpoint never takes the exhaustion alert
        exhausted = request.alert["kind"] == "ALERT_KIND_QUOTA_EXHAUSTED"
        return FAIL if exhausted and request.path == "/hooks/entitle" else OK

    endpoint = f"dead-{store_url[:6]}"
    quota_only = """\
  - id: quota-only
    url: {url}
    secret_env: ENTITLE_TEST_WEBHOOK_SECRET
    start: oldest
    filter: {{kinds: [QUOTA_EXHAUSTED], customer: globex}}
"""
    with Receiver(plan).running() as receiver:
        hooks = webhooks_file(tmp_path / "hooks.yaml", receiver.url, endpoint=endpoint,
                              max_attempts=3, extra=quota_only.format(url=receiver.url + "/q"))
        with in_process(bundle, store_url, config={"webhooks_file": str(hooks)}) as srv:
            alerts = alerts_of(srv)
            poisoned = [str(a.cursor) for a in alerts if a.kind == 2]  # QUOTA_EXHAUSTED
            wanted = [i for i in ids(alerts) if i not in poisoned]
            wait_for(lambda: receiver.accepted() == wanted, 60)

            done = f"lag 0 (cursor {alerts[-1].cursor} of {alerts[-1].cursor})"

            def healthy() -> str:  # both endpoints past the last alert (health may lag a poll)
                main(["health", "--server", f"127.0.0.1:{srv.port}"])
                out = capsys.readouterr().out
                return out if out.count(done) == 2 else ""

            out = wait_for(healthy)  # the last alert was dead-lettered
            dead = webhooks_of(srv.runtime).store.webhook_dead_letters(endpoint)
    assert receiver.accepted("/hooks/entitle/q") == poisoned  # its filter's only match
    main_requests = [r.event_id for r in receiver.requests if r.path == "/hooks/entitle"]
    assert main_requests.count(poisoned[0]) == 3  # max_attempts, then never again
    (letter,) = dead
    assert (str(letter.cursor), letter.attempts) == (poisoned[0], 3)
    assert letter.last_error == "HTTP 503: busy, try later"
    assert json.loads(letter.body)["alert"]["cursor"] == poisoned[0]
    lines = out.splitlines()
    assert lines[0] == "SERVING"
    dead_line = next(line for line in lines if line.startswith(f"webhook {endpoint}:"))
    latest = alerts[-1].cursor
    assert dead_line.startswith(
        f"webhook {endpoint}: lag 0 (cursor {latest} of {latest}), {len(alerts) - 1} delivered, "
        "1 dead letter, last error at "
    )
    assert dead_line.endswith(": HTTP 503: busy, try later")
    assert f"webhook quota-only: lag 0 (cursor {latest} of {latest}), 1 delivered, " \
           "0 dead letters" in lines
    assert metric("entitle_webhook_dead_letters", endpoint=endpoint) == 1
    assert metric("entitle_webhook_lag", endpoint=endpoint) == 0


def test_sla_alerts_reach_an_endpoint_that_asks_for_them_with_their_clock(
    tmp_path, store_url
):
    import test_sla_server as sla

    bundle = make_bundle(tmp_path)
    shutil.copy(sla.FIXTURES / "live-desk.yaml", bundle / "live-desk.yaml")
    with Receiver().running() as receiver:
        hooks = webhooks_file(tmp_path / "hooks.yaml", receiver.url, endpoint="sla-desk",
                              extra="")
        hooks.write_text(hooks.read_text().replace(
            "    start: oldest\n", "    start: oldest\n    filter: {kinds: [sla_breached, "
            "SLA_WARNING], customer: initech}\n"))
        config = {**sla.QUIET, "webhooks_file": str(hooks)}
        with in_process(bundle, store_url, config=config) as srv:
            sla.admit(srv.stub, "T-silent")
            sla.set_now(srv, sla.T0 + 125 * sla.M)
            assert sla.sla_sweep(srv) == 3
            wait_for(lambda: len(receiver.accepted()) == 3)
            expected = sla.sla_alerts(srv.stub, "T-silent")
    got = [r.alert for r in receiver.accepted_requests()]
    assert got == [to_dict(a) for a in expected]
    assert [(a["kind"], a["ticketId"], a["metric"], a["threshold"]) for a in got] == [
        ("ALERT_KIND_SLA_WARNING", "T-silent", "first_response", 50),
        ("ALERT_KIND_SLA_WARNING", "T-silent", "first_response", 75),
        ("ALERT_KIND_SLA_BREACHED", "T-silent", "first_response", 100),
    ]


def test_a_rotated_secret_file_signs_with_both_secrets_without_a_restart(
    bundle, tmp_path
):
    secret_file = tmp_path / "ops.secret"
    secret_file.write_text(SECRET + "\n")
    with Receiver().running() as receiver:
        hooks = tmp_path / "hooks.yaml"
        hooks.write_text(webhooks_file(tmp_path / "x.yaml", receiver.url).read_text().replace(
            "secret_env: ENTITLE_TEST_WEBHOOK_SECRET", "secret_file: ops.secret"))
        with in_process(bundle, f"sqlite:///{tmp_path}/e.db",
                        config={"webhooks_file": str(hooks)}) as srv:
            first_sweep(srv)
            wait_for(lambda: len(receiver.accepted()) == len(listed(srv.stub)))
            secret_file.write_text(f"{SECRET}\nwhsec_bmV4dC1zZWNyZXQtb2YtdGhlLW9wcy1ob29r\n")
            consume(srv.stub, ticket("T-rotate-1"))
            for i in range(2, 6):
                consume(srv.stub, ticket(f"T-rotate-{i}"))  # 50 %: an alert
            wait_for(lambda: len(receiver.accepted()) == len(listed(srv.stub)))
            # the secret file vanishes: nothing is sent, no attempt counted, the alert waits
            secret_file.unlink()
            sent = len(receiver.requests)
            consume(srv.stub, ticket("T-rotate-6"))  # 60 %: no alert; at 8 one is due
            consume(srv.stub, ticket("T-rotate-7"))
            consume(srv.stub, ticket("T-rotate-8"))
            wait_for(lambda: "secret: cannot read secret file" in
                     webhooks_of(srv.runtime).status()[0].last_error)
            assert len(receiver.requests) == sent
            assert webhooks_of(srv.runtime).status()[0].attempts == 0
            secret_file.write_text(SECRET + "\n")
            wait_for(lambda: len(receiver.accepted()) == len(listed(srv.stub)))
    first, last = receiver.accepted_requests()[0], receiver.accepted_requests()[-2]
    assert len(first.headers["webhook-signature"].split()) == 1
    assert len(last.headers["webhook-signature"].split()) == 2
    for secret in (SECRET, "whsec_bmV4dC1zZWNyZXQtb2YtdGhlLW9wcy1ob29r"):
        assert verify_webhook(secret, last.headers, last.body)
    assert not verify_webhook("whsec_bmV4dC1zZWNyZXQtb2YtdGhlLW9wcy1ob29r", first.headers,
                              first.body)


def test_a_crash_mid_way_loses_nothing_and_repeats_at_most_the_alert_in_flight(
    bundle, store_url, tmp_path
):
    with Receiver(delay=0.05).running() as receiver:
        hooks = webhooks_file(tmp_path / "hooks.yaml", receiver.url, endpoint="crashed")
        args = ("--webhooks", str(hooks))
        log = tmp_path / "server.log"
        with ServerProcess(bundle, store_url, log, extra_args=args) as server:
            channel, stub = stub_for(server.port)
            with channel:
                for i in range(12):
                    consume(stub, ticket(f"T-{i}"))
                wait_for(lambda: len(receiver.accepted()) >= 4, timeout=60)
            server.kill9()  # every process at once, mid-delivery
        # the dead worker's lease must run out (15 s) before the new server delivers
        with ServerProcess(bundle, store_url, log, extra_args=args) as server:
            channel, stub = stub_for(server.port)
            with channel:
                alerts = listed(stub)
                wait_for(lambda: set(receiver.accepted()) >= set(ids(alerts)), timeout=90)
                time.sleep(0.5)
    accepted = receiver.accepted()
    assert sorted(set(accepted), key=int) == ids(alerts)  # nothing lost
    assert len(accepted) - len(set(accepted)) <= 1  # the one answered but not yet recorded
    assert accepted == sorted(accepted, key=int)  # still in cursor order


def test_health_lists_every_endpoint_and_probes_get_none_of_it(bundle, tmp_path, capsys):
    closed = f"http://127.0.0.1:{free_port()}/nobody-listens"
    many = "".join(f"""\
  - id: refused-{i:02}-{'x' * 40}
    url: {closed}?padding={'p' * 200}
    secret_env: ENTITLE_TEST_WEBHOOK_SECRET
    start: oldest
    retry: {{max_attempts: 1000, backoff: 30s, max_backoff: 1m}}
""" for i in range(63))
    hooks = webhooks_file(tmp_path / "hooks.yaml", closed, extra=many)
    with in_process(bundle, f"sqlite:///{tmp_path}/e.db",
                    config={"webhooks_file": str(hooks)}) as srv:
        first_sweep(srv)

        def all_failing() -> str:
            main(["health", "--server", f"127.0.0.1:{srv.port}"])
            out = capsys.readouterr().out
            return out if out.count("ConnectError") == 64 else ""

        lines = wait_for(all_failing, timeout=60).splitlines()
        status, details = health_status(srv.channel)  # a probe: no entitle-details asked
    assert lines[0] == "SERVING" and len(lines) == 65
    assert lines[1].startswith("webhook ops: lag ")
    assert "1 failed attempts at the next alert, next attempt " in lines[-1]
    assert status == 1 and WEBHOOK_METADATA not in details  # SERVING, nothing more


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_two_replicas_on_one_postgresql_deliver_each_alert_once(bundle, store_url, tmp_path):
    if not store_url.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL store")
    with Receiver(delay=0.1).running() as receiver:
        hooks = webhooks_file(tmp_path / "hooks.yaml", receiver.url, endpoint="replicated")
        args = ("--webhooks", str(hooks), "--sweep-interval", "1")
        a = ServerProcess(bundle, store_url, tmp_path / "a.log", workers=2, extra_args=args)
        b = ServerProcess(bundle, store_url, tmp_path / "b.log", workers=2, extra_args=args)
        with a, b:
            channel, stub = stub_for(b.port)
            with channel:
                for i in range(12):
                    consume(stub, ticket(f"T-{i}"))
                wait_for(lambda: len(receiver.accepted()) >= 5, timeout=60)
                store = open_store(store_url)
                try:
                    def holder() -> int:
                        row = store._read_one(
                            "SELECT holder FROM leases WHERE name = 'webhook:replicated'")
                        return int(row[0].split(":")[1])

                    first = _parent_of(holder())
                    stopped, other = (a, b) if first == a.proc.pid else (b, a)
                    assert first == stopped.proc.pid
                    stopped.signal(signal.SIGTERM)  # the delivering replica goes away mid-way
                    assert stopped.proc.wait(timeout=30) == 0
                    channel2, stub2 = stub_for(other.port)
                    with channel2:
                        alerts = listed(stub2)
                    wait_for(lambda: len(receiver.accepted()) >= len(alerts), timeout=60)
                    time.sleep(1.0)
                    assert _parent_of(holder()) == other.proc.pid  # the other one took over
                finally:
                    store.close()
    assert len(alerts) >= 17
    assert receiver.accepted() == ids(alerts)  # each once, in order, across the handover
