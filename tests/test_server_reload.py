"""Hot reload over a real port: applied, refused (invalid, breaking), and never failing a call."""

from __future__ import annotations

import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2
from test_server_harness import (
    SERVICE,
    health_status,
    in_process,
    make_bundle,
    stub_for,
    ticket,
    wait_for,
)

from entitle.v1 import entitle_pb2 as pb

SERVING = health_pb2.HealthCheckResponse.SERVING
NEW_CONTRACT = """
---
kind: Contract
id: initech-extra
customer: initech
plan: incident-pack-10
products: [mail]
start: 2026-01-01
timezone: Europe/Berlin
precedence: 5
"""


@pytest.fixture
def bundle(tmp_path):
    return make_bundle(tmp_path)


@pytest.fixture
def sqlite_url(tmp_path):
    """Reload does not touch the ledger: one backend is enough here."""
    return f"sqlite:///{tmp_path / 'entitle.db'}"


def info(stub) -> pb.ServerInfoResponse:
    return stub.ServerInfo(pb.ServerInfoRequest(), timeout=10)


def add_contract(bundle) -> None:
    path = bundle / "contracts" / "others.yaml"
    path.write_text(path.read_text() + NEW_CONTRACT)


def break_plan(bundle) -> None:
    """premium-monthly resets quarterly: breaking, globex's contracts use it."""
    path = bundle / "plans.yaml"
    text = path.read_text()
    start = text.index("id: premium-monthly")
    head, tail = text[:start], text[start:]
    path.write_text(head + tail.replace("reset: monthly", "reset: quarterly", 1))


def test_file_change_is_picked_up_by_the_watcher(bundle, sqlite_url):
    with in_process(bundle, sqlite_url, reload_interval=0.05) as srv:
        before = info(srv.stub).policy_revision
        add_contract(bundle)
        wait_for(lambda: info(srv.stub).policy_revision != before)
        request = pb.GetContractStatusRequest(contract_id="initech-extra")
        status = srv.stub.GetContractStatus(request)
        assert status.contract.plan_id == "incident-pack-10"
        assert not info(srv.stub).last_reload_error


def test_invalid_bundle_is_refused_and_the_last_good_keeps_serving(bundle, sqlite_url):
    with in_process(bundle, sqlite_url, reload_interval=0.05) as srv:
        good = info(srv.stub).policy_revision
        broken = "kind: Sla\nid: broken\ntargets: {urgent: {first_response: soon}}\n"
        (bundle / "slas.yaml").write_text(broken)
        refused = wait_for(lambda: info(srv.stub).last_reload_error)
        assert "slas.yaml" in refused
        assert info(srv.stub).policy_revision == good
        assert info(srv.stub).HasField("last_reload_error_at")
        code, details = health_status(srv.channel, SERVICE)
        assert code == SERVING and "invalid bundle" in details["entitle-last-reload-error"]
        reply = srv.stub.CheckCoverage(pb.CheckCoverageRequest(ticket=ticket("T-1")))
        assert reply.decision.covered and reply.decision.policy_revision == good

        answer = srv.stub.Reload(pb.ReloadRequest())
        assert not answer.changed and "slas.yaml" in answer.error
        assert answer.policy_revision == good


def test_breaking_change_is_refused_naming_the_plan(bundle, sqlite_url):
    with in_process(bundle, sqlite_url) as srv:
        good = info(srv.stub).policy_revision
        break_plan(bundle)
        answer = srv.stub.Reload(pb.ReloadRequest())
        assert not answer.changed and answer.policy_revision == good
        assert "premium-monthly" in answer.error
        assert "premium-monthly" in info(srv.stub).last_reload_error


def test_a_refused_breaking_change_stays_refused_after_a_restart(bundle, store_url):
    """A restarted worker or a new replica checks the disk against the accepted bundle."""
    with in_process(bundle, store_url) as srv:
        good = info(srv.stub).policy_revision
        break_plan(bundle)
        assert srv.stub.Reload(pb.ReloadRequest()).error
    with in_process(bundle, store_url) as restarted:
        latest = info(restarted.stub)
        assert latest.policy_revision == good
        assert "accepted revision" in latest.last_reload_error
        assert "premium-monthly" in latest.last_reload_error
        status = restarted.stub.GetContractStatus(
            pb.GetContractStatusRequest(contract_id="globex-premium-2026"))
        assert status.policy_revision == good  # the monthly plan: the accepted bundle
        assert health_status(restarted.channel, SERVICE)[0] == SERVING


def test_a_restart_on_an_invalid_bundle_serves_the_accepted_one(bundle, store_url):
    with in_process(bundle, store_url) as srv:
        good = info(srv.stub).policy_revision
    (bundle / "slas.yaml").write_text("kind: Sla\nid: broken\n")
    with in_process(bundle, store_url) as restarted:
        latest = info(restarted.stub)
        assert latest.policy_revision == good and "invalid bundle" in latest.last_reload_error
        assert restarted.stub.CheckCoverage(pb.CheckCoverageRequest(ticket=ticket("T-1")))


def test_accept_breaking_applies_the_disk_bundle_on_start_and_records_it(bundle, store_url):
    with in_process(bundle, store_url) as srv:
        good = info(srv.stub).policy_revision
    break_plan(bundle)
    with in_process(bundle, store_url, config={"accept_breaking": True}) as forced:
        changed = info(forced.stub).policy_revision
        assert changed != good and not info(forced.stub).last_reload_error
    with in_process(bundle, store_url) as after:  # the forced bundle is the accepted one now
        assert info(after.stub).policy_revision == changed
        assert not info(after.stub).last_reload_error


def test_a_valid_change_made_while_stopped_is_applied_on_start(bundle, store_url):
    with in_process(bundle, store_url) as srv:
        good = info(srv.stub).policy_revision
    add_contract(bundle)
    with in_process(bundle, store_url) as restarted:
        latest = info(restarted.stub)
        assert latest.policy_revision != good and not latest.last_reload_error


def test_reload_rpc_applies_a_valid_change_and_clears_the_error(bundle, sqlite_url):
    with in_process(bundle, sqlite_url) as srv:
        good = info(srv.stub).policy_revision
        assert not srv.stub.Reload(pb.ReloadRequest()).changed  # nothing changed on disk
        path = bundle / "contracts" / "others.yaml"
        original = path.read_text()
        path.write_text("kind: Contract\n")
        assert srv.stub.Reload(pb.ReloadRequest()).error
        path.write_text(original + NEW_CONTRACT)
        answer = srv.stub.Reload(pb.ReloadRequest())
        assert answer.changed and not answer.error and answer.policy_revision != good
        assert not info(srv.stub).last_reload_error
        latest = info(srv.stub)
        assert latest.last_reload_attempt_at.ToDatetime() >= latest.loaded_at.ToDatetime()


def test_no_call_fails_while_reloading_in_a_loop(bundle, sqlite_url):
    """Readers hammer CheckCoverage (reads and admissions) while bundles swap under them."""
    path = bundle / "contracts" / "others.yaml"
    variants = [path.read_text(), path.read_text() + NEW_CONTRACT]
    with in_process(bundle, sqlite_url) as srv:
        stop = threading.Event()
        failures: list[str] = []
        revisions: set[str] = set()
        counts = [0]

        def hammer(worker: int) -> None:
            channel, stub = stub_for(srv.port)
            with channel:
                i = 0
                while not stop.is_set():
                    i += 1
                    msg = ticket(f"H-{worker}-{i}", "acme", "backup")
                    try:
                        reply = stub.CheckCoverage(
                            pb.CheckCoverageRequest(ticket=msg, consume=i % 2 == 0), timeout=10
                        )
                        assert reply.decision.covered
                        revisions.add(reply.decision.policy_revision)
                        counts[0] += 1
                    except (grpc.RpcError, AssertionError) as exc:
                        failures.append(repr(exc))

        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        try:
            for i in range(12):
                path.write_text(variants[(i + 1) % 2])
                answer = srv.stub.Reload(pb.ReloadRequest(), timeout=30)
                assert answer.changed and not answer.error
                wait_for(lambda: counts[0] > 0)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not failures, failures[:5]
        assert len(revisions) == 2 and counts[0] > 12


def test_a_dangling_link_added_to_the_bundle_is_refused_and_the_last_good_keeps_serving(
        bundle, sqlite_url):
    with in_process(bundle, sqlite_url, reload_interval=0.05) as srv:
        good = info(srv.stub).policy_revision
        (bundle / "extra.yaml").symlink_to("gone.yaml")  # the watcher sees it, too
        refused = wait_for(lambda: info(srv.stub).last_reload_error)
        assert "extra.yaml:1:1: dangling symlink: it points at gone.yaml" in refused
        assert info(srv.stub).policy_revision == good
        reply = srv.stub.CheckCoverage(pb.CheckCoverageRequest(ticket=ticket("T-1")))
        assert reply.decision.covered and reply.decision.policy_revision == good
