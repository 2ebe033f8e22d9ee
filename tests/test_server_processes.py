"""`entitle serve` as real processes: shared quota across servers, crashes, signals, workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from test_server_harness import (
    REPO,
    ServerProcess,
    make_bundle,
    stub_for,
    ticket,
    wait_for,
)

from entitle.server.config import FAKE_NOW_ENV
from entitle.v1 import entitle_pb2 as pb

PACK_LIMIT = 10  # globex-mail-pack: incident-pack-10, rejects when used up


@pytest.fixture
def bundle(tmp_path):
    return make_bundle(tmp_path)


def test_two_servers_sharing_a_store_admit_exactly_what_is_left(bundle, store_url, tmp_path):
    n = 40
    with (
        ServerProcess(bundle, store_url, tmp_path / "a.log", workers=1) as a,
        ServerProcess(bundle, store_url, tmp_path / "b.log", workers=1) as b,
    ):
        stubs = [stub_for(a.port), stub_for(b.port)]
        # Use up 3 of the pack first, so k = 7 < n remain.
        for i in range(3):
            assert stubs[i % 2][1].CheckCoverage(
                pb.CheckCoverageRequest(ticket=ticket(f"pre-{i}"), consume=True)
            ).admitted
        barrier = threading.Barrier(n)

        def admit(i: int) -> pb.CheckCoverageResponse:
            stub = stubs[i % 2][1]
            barrier.wait()
            return stub.CheckCoverage(
                pb.CheckCoverageRequest(ticket=ticket(f"race-{i}"), consume=True), timeout=60
            )

        with ThreadPoolExecutor(n) as pool:
            replies = list(pool.map(admit, range(n)))
        admitted = [r for r in replies if r.admitted]
        assert len(admitted) == PACK_LIMIT - 3
        rest = {r.decision.reason for r in replies if not r.admitted}
        assert rest == {pb.COVERAGE_REASON_QUOTA_EXHAUSTED}
        assert {r.decision.quota.used for r in admitted} == set(range(4, PACK_LIMIT + 1))
        for _, stub in stubs:
            status = stub.GetContractStatus(
                pb.GetContractStatusRequest(contract_id="globex-mail-pack")
            )
            assert status.contract.quota.used == PACK_LIMIT
        for channel, _ in stubs:
            channel.close()


WEEKLY_LIMIT = 100  # tailspin-weekly: weekly-100, rejects when used up


def test_kill_9_mid_load_loses_no_acknowledged_admission(bundle, store_url, tmp_path):
    """Clients admit distinct tickets, on an unlimited plan and on a limited one whose quota
    runs out during the burst; every process of the server dies at once mid-stream, while
    admissions of a group share a commit. Restarted: every acknowledged admission is in the
    ledger, none counted twice, the limited one never over its limit."""
    server = ServerProcess(bundle, store_url, tmp_path / "server.log", workers=2)
    server.start().wait_ready()
    acked: list[str] = []
    attempted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        channel, stub = stub_for(server.port)
        with channel:
            i = 0
            while not stop.is_set():
                i += 1
                tid = f"K-{worker}-{i}"
                customer = ("acme", "backup") if i % 2 else ("tailspin", "mail")
                with lock:
                    attempted.append(tid)
                try:
                    reply = stub.CheckCoverage(
                        pb.CheckCoverageRequest(ticket=ticket(tid, *customer), consume=True),
                        timeout=10,
                    )
                except grpc.RpcError:
                    return  # the server is gone
                if customer[0] == "acme":
                    assert reply.admitted
                else:
                    assert reply.admitted or (
                        reply.decision.reason == pb.COVERAGE_REASON_QUOTA_EXHAUSTED
                    )
                    assert reply.decision.quota.used <= WEEKLY_LIMIT
                if reply.admitted:
                    with lock:
                        acked.append(tid)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    try:
        # Killed soon after the weekly quota ran out (every second ticket is Tailspin's).
        wait_for(lambda: len(acked) >= 150 and len(attempted) >= 2 * WEEKLY_LIMIT + 20,
                 timeout=120)
        server.kill9()
    finally:
        stop.set()
        for t in threads:
            t.join()

    with ServerProcess(bundle, store_url, tmp_path / "server2.log", workers=1, port=server.port):
        channel, stub = stub_for(server.port)
        with channel:
            stored, admitted_now = set(), set()
            for tid in attempted:
                customer = ("acme", "backup") if int(tid.rsplit("-", 1)[1]) % 2 else (
                    "tailspin", "mail")
                reply = stub.CheckCoverage(
                    pb.CheckCoverageRequest(ticket=ticket(tid, *customer), consume=True)
                )
                if reply.duplicate:
                    stored.add(tid)
                elif reply.admitted:
                    admitted_now.add(tid)
            assert set(acked) <= stored  # every acknowledged admission survived
            acme = [t for t in attempted if int(t.rsplit("-", 1)[1]) % 2]
            status = stub.GetContractStatus(pb.GetContractStatusRequest(contract_id="acme-backup"))
            # ... and counted exactly once; the retries above admitted the rest, once each.
            assert status.contract.quota.used == len(acme)
            weekly = stub.GetContractStatus(
                pb.GetContractStatusRequest(contract_id="tailspin-weekly")
            ).contract.quota.used
            counted = [t for t in stored | admitted_now if t not in acme]
            assert weekly == len(counted) == WEEKLY_LIMIT  # used up during the burst, not passed


def test_sighup_reloads_every_worker(bundle, tmp_path):
    store = f"sqlite:///{tmp_path / 'entitle.db'}"
    with ServerProcess(bundle, store, tmp_path / "server.log", workers=2) as server:
        channel, stub = stub_for(server.port)
        before = stub.ServerInfo(pb.ServerInfoRequest()).policy_revision
        channel.close()
        path = bundle / "contracts" / "others.yaml"
        path.write_text(path.read_text().replace("precedence: 10", "precedence: 11"))
        server.signal(signal.SIGHUP)

        def all_reloaded() -> bool:
            seen = {}
            for _ in range(12):
                channel, stub = stub_for(server.port)
                with channel:
                    info = stub.ServerInfo(pb.ServerInfoRequest(), timeout=5)
                    seen[info.pid] = info.policy_revision
            return len(seen) == 2 and before not in seen.values()

        wait_for(all_reloaded, timeout=30, interval=0.2)
        assert server.stop() == 0


def test_a_crashed_worker_is_restarted(bundle, tmp_path):
    store = f"sqlite:///{tmp_path / 'entitle.db'}"
    with ServerProcess(bundle, store, tmp_path / "server.log", workers=1) as server:
        channel, stub = stub_for(server.port)
        with channel:
            victim = stub.ServerInfo(pb.ServerInfoRequest()).pid
        os.kill(victim, signal.SIGKILL)

        def replaced() -> int:
            channel, stub = stub_for(server.port)
            with channel:
                try:
                    pid = stub.ServerInfo(pb.ServerInfoRequest(), timeout=5).pid
                except grpc.RpcError:
                    return 0
            return pid if pid != victim else 0

        wait_for(replaced, timeout=30, interval=0.2)
        assert server.stop() == 0
        assert "worker exited; restarting" in server.log.read_text()


def serve_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "entitle", "serve", *args],
        capture_output=True, text=True, timeout=60, cwd=REPO, env={**os.environ, **(env or {})},
    )


def test_serve_refuses_bad_options(bundle, tmp_path):
    store = f"sqlite:///{tmp_path / 'entitle.db'}"
    common = ["--policies", str(bundle), "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"]
    out = serve_cli(*common, "--workers", "0", "--store", store)
    assert out.returncode == 2 and "--workers" in out.stderr
    out = serve_cli(*common, "--store", store, env={FAKE_NOW_ENV: "someday"})
    assert out.returncode == 2 and FAKE_NOW_ENV in out.stderr
    out = serve_cli(*common, "--listen", "nowhere", "--store", store)
    assert out.returncode == 2 and "HOST:PORT" in out.stderr
    out = serve_cli(*common, "--store", "mysql://localhost/entitle", "--workers", "1")
    assert out.returncode == 2 and "unsupported store 'mysql://localhost/entitle'" in out.stderr


@pytest.mark.parametrize(("store", "why"), [
    ("{tmp}/no-such-dir/entitle.db", "sqlite store '{tmp}/no-such-dir/entitle.db': directory "
                                     "'{tmp}/no-such-dir' does not exist"),
    ("sqlite:///{tmp}/no-such-dir/entitle.db", "sqlite store '{tmp}/no-such-dir/entitle.db': "
                                               "directory '{tmp}/no-such-dir' does not exist"),
    ("{tmp}", "sqlite store '{tmp}': "),  # a directory, not a file
    ("mysql://localhost/entitle", "unsupported store 'mysql://localhost/entitle': use a file "
                                  "path (SQLite), sqlite:///PATH"),
    ("postgresql://entitle@127.0.0.1:1/entitle", "cannot connect to "
                                                 "postgresql://entitle@127.0.0.1:1/entitle: "),
])
def test_a_bad_store_is_one_line_and_exit_2_before_serving(bundle, tmp_path, store, why):
    store = store.format(tmp=tmp_path)
    out = serve_cli("--policies", str(bundle), "--listen", "127.0.0.1:0", "--store", store)
    assert out.returncode == 2
    assert "serving" not in out.stdout + out.stderr and "worker" not in out.stderr
    [line] = out.stderr.splitlines()
    assert line.startswith(f"entitle serve: --store {store}: {why.format(tmp=tmp_path)}"), line


@pytest.mark.parametrize("relative", [True, False], ids=["relative path", "absolute path"])
def test_a_plain_path_is_a_sqlite_store_end_to_end(bundle, tmp_path, relative):
    path = tmp_path / "entitle.db"
    store = os.path.relpath(path, REPO) if relative else str(path)  # the server runs in REPO
    with ServerProcess(bundle, store, tmp_path / "server.log", workers=1) as server:
        channel, stub = stub_for(server.port)
        with channel:
            request = pb.CheckCoverageRequest(ticket=ticket("plain-1"), consume=True)
            assert stub.CheckCoverage(request).admitted
            assert stub.CheckCoverage(request).duplicate  # the same ticket: from the ledger
        assert server.stop() == 0
    assert path.is_file() and path.stat().st_size > 0
    assert '"store": "sqlite:///' in (tmp_path / "server.log").read_text()
