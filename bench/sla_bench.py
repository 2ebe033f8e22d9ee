"""Live SLA clocks: recording a ticket event vs a non-consuming CheckCoverage, and sweeps.

1. Calls, in one run against one store, alternating blocks so drift hits both alike:
   - CheckCoverage with consume=false (a read: decision, clocks, one usage read);
   - RecordTicketEvents with one new event (the ticket's row locked and its events read in
     one round trip, the clocks recomputed (open ones measured, stopped ones remembered),
     the event inserted and the row updated with the durable commit: the store's group
     commit, a group of one here); tickets are rotated so each has at most
     --events-per-ticket events;
   measured twice: through the service code in this process (EntitlementCalls, no gRPC),
   and over gRPC against a real `entitle serve` process (sequential Python client). The
   ticket is Initech's on a bench contract with the example bundle's premium SLA (business
   hours on the Berlin desk, pause_on, warn_at). Prints µs per call and the ratio
   (target: RecordTicketEvents <= 2x CheckCoverage).
2. A sweep with --clocks open clocks (seeded directly with SQL) of which --due fall due
   within the last second: `SlaSweeper.sweep()` end to end (the lease, the index range
   scan, each due ticket's clocks recomputed, alerts appended, rows updated in one
   transaction), plus its parts (target: < 1 s).

    .venv/bin/python bench/sla_bench.py [--store sqlite|postgresql://...] [--clocks 1000000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from grpc_bench import server_cpu  # noqa: E402

from entitle.engine.clocks import History, evaluate  # noqa: E402
from entitle.server.clock import FixedClock  # noqa: E402
from entitle.server.config import FAKE_NOW_ENV, ServeConfig  # noqa: E402
from entitle.server.runtime import Runtime  # noqa: E402
from entitle.server.service.calls import EntitlementCalls  # noqa: E402
from entitle.server.service.wire import timestamp  # noqa: E402
from entitle.server.slaclocks import SlaClocks, SlaSweeper  # noqa: E402
from entitle.server.store import open_store  # noqa: E402
from entitle.server.store.base import to_text  # noqa: E402
from entitle.v1 import entitle_pb2 as pb  # noqa: E402
from entitle.v1 import entitle_pb2_grpc  # noqa: E402

NOW = datetime(2026, 6, 16, 9, 0, tzinfo=UTC)  # a Tuesday, 11:00 on the Berlin desk
CREATED = NOW - timedelta(minutes=30)
BENCH_CONTRACT = """
kind: Plan
id: bench-premium-unlimited
name: Bench premium (unlimited)
type: unlimited
unit: incidents
sla: premium
---
kind: Contract
id: bench-initech-live
customer: initech
plan: bench-premium-unlimited
products: [live-bench]
start: 2026-01-01
timezone: Europe/Berlin
precedence: 20
owner: desk-lead@initech.example
"""
EVENT_CYCLE = (("status_changed", "pending"), ("customer_message", None),
               ("status_changed", "open"), ("agent_reply", None))


class _Call:
    """What the service code asks of a call in flight, for calls made without a face."""

    def time_remaining(self):
        return None

    def is_active(self):
        return True

    def add_callback(self, callback):
        return None


def bench_bundle(root: Path) -> Path:
    bundle = root / "policies"
    shutil.copytree(REPO / "policies", bundle)
    (bundle / "bench-live.yaml").write_text(BENCH_CONTRACT)
    return bundle


def fresh_pg(url: str) -> tuple[str, str]:
    import uuid
    from urllib.parse import quote

    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}", schema


def drop_pg(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def ticket_msg(ticket_id: str) -> pb.Ticket:
    return pb.Ticket(ticket_id=ticket_id, customer_id="initech", product="live-bench",
                     priority="medium", created_at=timestamp(CREATED))


class Load:
    """Requests of both kinds: one read ticket, and new events over rotated tickets."""

    def __init__(self, tickets: int, per_ticket: int, prefix: str):
        self.tickets, self.per_ticket, self.prefix = tickets, per_ticket, prefix
        self.sent = 0
        self.read = pb.CheckCoverageRequest(ticket=ticket_msg("B-read"), consume=False)

    def ids(self) -> list[str]:
        return [f"{self.prefix}{i}" for i in range(self.tickets)]

    def next_event(self) -> pb.RecordTicketEventsRequest:
        n = self.sent
        self.sent += 1
        ticket, k = n % self.tickets, n // self.tickets
        if k >= self.per_ticket:
            raise RuntimeError("out of tickets: raise --tickets")
        kind, status = EVENT_CYCLE[k % len(EVENT_CYCLE)]
        at = CREATED + timedelta(seconds=10 * (k + 1))
        new = pb.TicketEvent(id=f"ev-{k}", type=kind, at=timestamp(at), status=status or "")
        return pb.RecordTicketEventsRequest(ticket_id=f"{self.prefix}{ticket}", events=[new])


def timed_blocks(read, write, blocks: int, block: int, cpu=time.process_time) -> dict:
    """µs per call of each kind, wall and CPU (`cpu()`: entitle's CPU seconds so far), over
    blocks alternating which kind goes first; medians of the blocks."""
    out = {"read": ([], []), "write": ([], [])}
    for b in range(blocks):
        order = (("read", read), ("write", write))
        for name, fn in order if b % 2 == 0 else reversed(order):
            t, c = time.perf_counter(), cpu()
            for _ in range(block):
                fn()
            out[name][0].append((time.perf_counter() - t) / block * 1e6)
            out[name][1].append((cpu() - c) / block * 1e6)
    return {f"{name}_{kind}": statistics.median(values)
            for name, (wall, cpu_us) in out.items()
            for kind, values in (("us", wall), ("cpu_us", cpu_us))}


def bench_calls(url: str, bundle: Path, blocks: int, block: int, per_ticket: int) -> dict:
    """In process: the service methods themselves."""
    config = ServeConfig(policies=str(bundle), store_url=url, reload_interval=0,
                         sweep_interval=0, sla_sweep_interval=0)
    runtime = Runtime.open(config, FixedClock(NOW))
    calls, call = EntitlementCalls(runtime), _Call()
    load = Load(blocks * block // per_ticket + 2, per_ticket, "B-")
    try:
        for tid in load.ids():
            calls.check_coverage(pb.CheckCoverageRequest(ticket=ticket_msg(tid), consume=True),
                                 call)
        for _ in range(block):  # warm-up
            calls.check_coverage(load.read, call)
        count = iter(range(10**9))
        got = timed_blocks(lambda: calls.check_coverage(load.read, call),
                           lambda: calls.record_ticket_events(load.next_event(), call),
                           blocks, block)
        # The storage's own floor for a durable write: one upsert and its commit.
        floor = timed_blocks(lambda: runtime.store.set_meta("bench", str(next(count))),
                             lambda: None, blocks, block)
    finally:
        runtime.close()
    return {**got, "commit_us": floor["read_us"]}


def bench_grpc(url: str, bundle: Path, blocks: int, block: int, per_ticket: int,
               log: Path) -> dict:
    """Over gRPC: a real `entitle serve` process, one sequential client."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, FAKE_NOW_ENV: NOW.isoformat()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "entitle", "serve", "--policies", str(bundle), "--store", url,
         "--listen", f"127.0.0.1:{port}", "--reload-interval", "0", "--sweep-interval", "0",
         "--sla-sweep-interval", "0"],
        env=env, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        grpc.channel_ready_future(channel).result(timeout=60)
        stub = entitle_pb2_grpc.EntitlementServiceStub(channel)
        deadline = time.monotonic() + 60
        while True:
            try:
                stub.Ping(pb.PingRequest(), timeout=5)
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        load = Load(blocks * block // per_ticket + 2, per_ticket, "G-")  # not the B- ones
        for tid in load.ids():
            stub.CheckCoverage(pb.CheckCoverageRequest(ticket=ticket_msg(tid), consume=True),
                               timeout=10)

        def write():
            stub.RecordTicketEvents(load.next_event(), timeout=10)

        for _ in range(block):
            stub.CheckCoverage(load.read, timeout=10)
            stub.Ping(pb.PingRequest(), timeout=10)
        cpu = lambda: server_cpu(proc)  # noqa: E731
        ping = timed_blocks(lambda: stub.Ping(pb.PingRequest(), timeout=10), lambda: None,
                            blocks, block, cpu)
        got = timed_blocks(lambda: stub.CheckCoverage(load.read, timeout=10), write,
                           blocks, block, cpu)
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {**got, "ping_us": ping["read_us"], "ping_cpu_us": ping["read_cpu_us"]}


# --- the sweep ----------------------------------------------------------------------------


CLOCK_INSERT = (
    "ticket_id, contract_id, customer_id, plan_id, product, terms_id, created_at, priority, "
    "event_count, version, next_alert_at, alerted, updated_at"
)


def seed_clocks(store, terms_id: str, clocks: int, due: int, due_created: datetime,
                due_at: datetime) -> float:
    """`clocks` open clock rows, `due` of them due at `due_at` (spread over its last
    second), the others due in the coming weeks; the seconds it took."""
    started = time.perf_counter()
    step = max(1, clocks // due)

    def rows():
        for i in range(clocks):
            if i % step == 0 and i // step < due:
                created = due_created
                at = due_at - timedelta(microseconds=(i // step) * 997)
            else:
                created = NOW - timedelta(minutes=i % 600)
                at = NOW + timedelta(minutes=1 + i % 40_000)
            yield (f"S-{i:07d}", "bench-initech-live", "initech", "bench-premium-unlimited",
                   "live-bench", terms_id, to_text(created), "medium", 0, 0, to_text(at), "",
                   to_text(created))

    if store.backend == "sqlite":
        conn = store._connection()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT INTO ticket_clocks ({CLOCK_INSERT}) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    else:
        with store.pool.connection() as conn, conn.cursor() as cur:
            with cur.copy(f"COPY ticket_clocks ({CLOCK_INSERT}) FROM STDIN") as copy:
                for row in rows():
                    copy.write_row(row)
            cur.execute("ANALYZE ticket_clocks")
    return time.perf_counter() - started


def bench_sweep(url: str, bundle: Path, clocks: int, due: int) -> dict:
    config = ServeConfig(policies=str(bundle), store_url=url, reload_interval=0,
                         sweep_interval=0, sla_sweep_interval=0)
    runtime = Runtime.open(config, FixedClock(NOW))
    store = runtime.store
    try:
        with runtime.holder.lease() as snapshot:
            sla = runtime.sla_clocks
            terms_id = sla.pin(snapshot, "premium", None, NOW)
            terms = sla.terms_of(terms_id)
        # Due tickets: created so that a warning falls due in the last second before NOW.
        created = NOW - timedelta(minutes=30)
        first = evaluate(terms, History(created, "medium"), created).next_crossing_at
        due_created = created + (NOW - first)  # its first crossing at NOW exactly
        seeded = seed_clocks(store, terms_id, clocks, due, due_created, NOW)
        sweeper = SlaSweeper(store, runtime.holder, runtime.clock, SlaClocks(store,
                             runtime.holder), bus=runtime.alert_bus)
        t = time.perf_counter()
        rows = store.due_clocks(NOW, 1000)
        read = time.perf_counter() - t
        t = time.perf_counter()
        for clock, events in rows:
            sweeper.sla.assess(clock, events, NOW)
        assess = time.perf_counter() - t
        t = time.perf_counter()
        appended = sweeper.sweep()
        total = time.perf_counter() - t
        t = time.perf_counter()
        again = sweeper.sweep()
        idle = time.perf_counter() - t
        left = len(store.due_clocks(NOW, 10))
    finally:
        runtime.close()
    return {"clocks": clocks, "due": len(rows), "seed_s": seeded, "read_s": read,
            "assess_s": assess, "sweep_s": total, "appended": appended, "idle_sweep_s": idle,
            "again": again, "left_due": left}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--store", default="sqlite", help="sqlite, or a postgresql:// URL")
    p.add_argument("--blocks", type=int, default=10)
    p.add_argument("--block", type=int, default=200, help="calls per block")
    p.add_argument("--events-per-ticket", type=int, default=20)
    p.add_argument("--clocks", type=int, default=1_000_000)
    p.add_argument("--due", type=int, default=1000)
    p.add_argument("--skip-calls", action="store_true")
    p.add_argument("--skip-sweep", action="store_true")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sla-bench-"))
    bundle = bench_bundle(tmp)
    cleanup = []
    if args.store == "sqlite":
        url = f"sqlite:///{tmp / 'calls.db'}"
        sweep_url = f"sqlite:///{tmp / 'sweep.db'}"
    else:
        url, schema = fresh_pg(args.store)
        sweep_url, schema2 = fresh_pg(args.store)
        cleanup = [schema, schema2]
    name = "SQLite" if args.store == "sqlite" else "PostgreSQL"
    try:
        open_store(url).close()
        if not args.skip_calls:
            for where, got in (
                ("in process", bench_calls(url, bundle, args.blocks, args.block,
                                           args.events_per_ticket)),
                ("over gRPC", bench_grpc(url, bundle, args.blocks, args.block,
                                         args.events_per_ticket, tmp / "server.log")),
            ):
                extra = (f"; the store's bare durable write (one upsert + commit) "
                         f"{got['commit_us']:.0f} µs" if "commit_us" in got else
                         f"; Ping {got['ping_us']:.0f} µs (cpu {got['ping_cpu_us']:.0f})")
                print(f"{name} {where}: CheckCoverage read {got['read_us']:.0f} µs (cpu "
                      f"{got['read_cpu_us']:.0f}), RecordTicketEvents {got['write_us']:.0f} µs "
                      f"(cpu {got['write_cpu_us']:.0f}); ratio wall "
                      f"{got['write_us'] / got['read_us']:.2f}, cpu "
                      f"{got['write_cpu_us'] / got['read_cpu_us']:.2f}{extra}")
        if not args.skip_sweep:
            got = bench_sweep(sweep_url, bundle, args.clocks, args.due)
            print(f"{name} sweep: {got['clocks']:,} open clocks, {got['due']} due; seeded in "
                  f"{got['seed_s']:.1f} s; sweep {got['sweep_s']:.3f} s ({got['appended']} "
                  f"alerts; parts: read {got['read_s']:.3f} s, assess {got['assess_s']:.3f} s)"
                  f"; next sweep {got['idle_sweep_s']:.3f} s ({got['again']} alerts); "
                  f"still due {got['left_due']}")
    finally:
        for schema in cleanup:
            drop_pg(args.store, schema)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
