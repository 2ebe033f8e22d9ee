"""gRPC service throughput and latency: CheckCoverage against the same server's empty RPC.

For each store backend, starts `entitle serve` on the example bundle and, in one run against
that one server, drives with h2load (raw gRPC unary calls: POST, content-type
application/grpc, te: trailers, a length-prefixed request body):

- Ping, the empty RPC: the server's per-call floor;
- CheckCoverage with consume=false, a read: the engine's decision plus a usage read;
- CheckCoverage with consume=true and one fixed ticket id: after the first call every call
  is a duplicate admission (the ledger lookup that makes retries safe);

then CheckCoverage reads paced at half their saturated rate (latency without queueing),
then measures true distinct admissions (consume=true, a new ticket id each call, one
ledger write each) with a Python gRPC load generator in several processes, since h2load
sends one fixed body, against Ping driven by that same generator: on one counter row (Acme's
unlimited backup contract, a hot row), spread over many contracts, and paced at half the
saturated rate (latency without queueing). Then, with the server stopped, the storage's own
limit on the same database (bench/storage_limit.py: only the SQL of one admission per
transaction, same concurrency), hot and spread. Prints req/s, p50/p99 latency, the server's
CPU per call (its processes' CPU time over the calls: independent of other load on the
machine), the CheckCoverage/Ping ratios and entitle's admissions / the storage's limit.

    bench/run_grpc_bench.sh            # installs h2load if missing, then runs this
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import grpc
import storage_limit
from grpc_health.v1 import health_pb2, health_pb2_grpc

from entitle.server.config import FAKE_NOW_ENV
from entitle.server.service.wire import timestamp
from entitle.v1 import entitle_pb2 as pb
from entitle.v1 import entitle_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
SERVICE = "/entitle.v1.EntitlementService/"
NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
# Initech's licensed-support contract: a quarterly quota, SLA chosen by license-count rules
# (durable-rules), business-hours due times on the New York desk.
READ_TICKET = dict(customer_id="initech", product="analytics", priority="high",
                   subject="Dashboard export fails", license=75)
# Acme's backup contract is unlimited: admissions never run out during a long run.
ADMIT_TICKET = dict(customer_id="acme", product="backup", priority="urgent",
                    subject="Restore job hangs", license=10)
SPREAD_CONTRACTS = 1000  # Acme branches, each its own unlimited backup contract (no hot row)
SPREAD = "spread"


def bench_bundle(work: Path) -> Path:
    """The example bundle plus SPREAD_CONTRACTS contracts for the spread admissions."""
    bundle = work / "policies"
    shutil.copytree(REPO / "policies", bundle)
    (bundle / "contracts" / "bench-branches.yaml").write_text("---\n".join(
        f"kind: Contract\nid: acme-branch-{k}\ncustomer: acme-branch-{k}\n"
        "plan: backup-unlimited\nproducts: [backup]\nstart: 2026-01-01\nend: 2027-01-01\n"
        "timezone: Europe/Berlin\n"
        for k in range(SPREAD_CONTRACTS)
    ))
    return bundle


def ticket_msg(ticket_id: str, spec: dict) -> pb.Ticket:
    msg = pb.Ticket(
        ticket_id=ticket_id, customer_id=spec["customer_id"], product=spec["product"],
        priority=spec["priority"], subject=spec["subject"], created_at=timestamp(NOW),
    )
    msg.attributes["license_count"].number_value = spec["license"]
    return msg


def grpc_frame(message) -> bytes:
    """A gRPC length-prefixed message: uncompressed flag, 4-byte big-endian length, bytes."""
    body = message.SerializeToString()
    return struct.pack(">BI", 0, len(body)) + body


@dataclass
class Result:
    backend: str
    name: str
    tool: str
    requests: int
    failed: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us: float = float("nan")  # server CPU (all its processes) per call


def server_cpu(proc: subprocess.Popen) -> float:
    """CPU seconds used so far by the server: the supervisor and its worker processes.

    Unlike req/s, CPU per call does not depend on what else the machine is running."""
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True)
    total = 0
    for pid in [proc.pid, *map(int, children.stdout.split())]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    store: str, port: int, workers: int, log: Path, policies: Path = REPO / "policies",
    http_port: int | None = None,
) -> subprocess.Popen:
    """`entitle serve` on `port` (gRPC) and `http_port` (HTTP; None: no HTTP listener)."""
    http = ["--http", f"127.0.0.1:{http_port}"] if http_port else ["--no-http"]
    cmd = [
        sys.executable, "-m", "entitle", "serve", "--policies", str(policies),
        "--store", store, "--listen", f"127.0.0.1:{port}", "--workers", str(workers),
        "--reload-interval", "0", "--log-level", "warning", *http,
    ]
    env = {**os.environ, FAKE_NOW_ENV: NOW.isoformat()}
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited; see {log}")
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                reply = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return proc
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server did not become ready; see {log}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def check_body(port: int, method: str, body: bytes, response_type) -> None:
    """h2load counts HTTP 200 as success; make sure this body gets gRPC OK first."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_unary(SERVICE + method)
        raw = call(body[5:], timeout=10)  # the serializer-less call sends bytes as they are
        response_type.FromString(raw)


GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")


def run_h2load(
    port: int, method: str, body: bytes, args, work: Path, backend: str, name: str,
    rps: float | None = None, server: subprocess.Popen | None = None,
    headers: tuple[str, ...] = GRPC_HEADERS, http1: bool = False,
) -> Result:
    """Saturating (each stream sends its next call as soon as the last one returns), or paced
    at `rps` calls per second in all. `http1`: HTTP/1.1 with keep-alive, one call at a time
    per connection and as many connections as streams (the HTTP face has no HTTP/2)."""
    body_file = work / f"{name}.bin"
    body_file.write_bytes(body)
    log_file = work / f"{name}.tsv"
    log_file.unlink(missing_ok=True)
    connections = args.streams if http1 else args.connections
    cmd = [
        args.h2load, "-c", str(connections), "-m", str(args.streams // connections),
        "-t", "1", "-D", str(max(1, round(args.duration))),  # h2load takes whole seconds
        "--warm-up-time", str(max(0, round(args.warmup))),
        "-d", str(body_file), *(x for h in headers for x in ("-H", h)),
        *(("--h1",) if http1 else ()),
        f"--log-file={log_file}", f"http://127.0.0.1:{port}{SERVICE}{method}",
    ]
    if rps is not None:  # h2load paces each connection
        cmd[1:1] = [f"--rps={max(1.0, rps / connections):.1f}"]
    cpu_before = server_cpu(server) if server else float("nan")
    done_run = subprocess.run(cmd, capture_output=True, text=True)
    cpu_used = server_cpu(server) - cpu_before if server else float("nan")
    if done_run.returncode != 0:
        raise SystemExit(f"h2load failed ({done_run.returncode}):\n{done_run.stdout[-2000:]}"
                         f"\n{done_run.stderr[-2000:]}")
    out = done_run.stdout
    rps = float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1))
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed",
                  out)
    done, failed = int(m.group(2)), int(m.group(4))
    latencies = sorted(
        int(line.split("\t")[2]) / 1000.0
        for line in log_file.read_text().splitlines()
        if line.count("\t") == 2
    )
    # h2load's count includes the warm-up's calls in neither; CPU covers warm-up too.
    total_calls = done + rps * max(0, round(args.warmup))
    return Result(backend, name, "h2load", done, failed, rps, _pct(latencies, 50),
                  _pct(latencies, 99), 1e6 * cpu_used / max(1.0, total_calls))


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def _admit_worker(port: int, prefix: str, threads: int, seconds: float, queue,
                  ping: bool = False, spread: int = 0, rate: float = 0.0) -> None:
    """One load process: `threads` callers each admitting new tickets (or pinging, for the
    baseline with the same generator) until time is up; with `spread`, over that many
    contracts; with `rate`, each caller sends `rate` calls per second (on schedule, sooner
    only to catch up), otherwise the next as soon as the last returned."""
    import threading

    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def caller(n: int) -> None:
        mine: list[float] = []
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = entitle_pb2_grpc.EntitlementServiceStub(ch)
            i = 0
            due = time.monotonic() + (n / threads / rate if rate else 0.0)
            while time.monotonic() < stop_at:
                i += 1
                spec = ADMIT_TICKET
                if spread:
                    spec = {**spec, "customer_id": f"acme-branch-{(n * 7919 + i) % spread}"}
                request = pb.CheckCoverageRequest(
                    ticket=ticket_msg(f"{prefix}-{n}-{i}", spec), consume=True
                )
                if rate:
                    time.sleep(max(0.0, due - time.monotonic()))
                    due += 1.0 / rate
                t0 = time.perf_counter()
                try:
                    if ping:
                        stub.Ping(pb.PingRequest(), timeout=30)
                        ok = True
                    else:
                        ok = stub.CheckCoverage(request, timeout=30).admitted
                except grpc.RpcError:
                    ok = False
                mine.append((time.perf_counter() - t0) * 1000)
                if not ok:
                    with lock:
                        failures[0] += 1
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=caller, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    queue.put((latencies, failures[0]))


def run_admissions(port: int, args, backend: str, server: subprocess.Popen,
                   ping: bool = False, spread: int = 0, rps: float = 0.0) -> Result:
    """Saturating (each stream calls again once answered), or paced at `rps` in all."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    per = max(1, args.streams // args.load_processes)
    prefix = f"adm-{backend}-{os.getpid()}-{time.time_ns()}"
    rate = rps / (per * args.load_processes)
    procs = [
        ctx.Process(target=_admit_worker,
                    args=(port, f"{prefix}-{p}", per, args.duration, queue, ping, spread,
                          rate))
        for p in range(args.load_processes)
    ]
    t0, cpu_before = time.monotonic(), server_cpu(server)
    for p in procs:
        p.start()
    latencies, failed = [], 0
    for _ in procs:
        lat, f = queue.get()
        latencies += lat
        failed += f
    for p in procs:
        p.join()
    elapsed, cpu_used = time.monotonic() - t0, server_cpu(server) - cpu_before
    latencies.sort()
    name = "Ping" if ping else "CheckCoverage consume=true, distinct tickets"
    if spread:
        name += f", {spread} contracts"
    if rps:
        name += f" at {args.paced:.0%} load"
    return Result(backend, name, "python-grpc",
                  len(latencies), failed, len(latencies) / min(elapsed, args.duration + 5),
                  _pct(latencies, 50), _pct(latencies, 99),
                  1e6 * cpu_used / max(1, len(latencies)))


def fresh_pg_database(admin_url: str, name: str) -> str:
    """A new empty database next to `admin_url`'s, so each run starts from an empty ledger."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop_pg_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_backend(backend: str, store: str, args, work: Path, bundle: Path) -> list[Result]:
    port = free_port()
    proc = start_server(store, port, args.workers, work / f"server-{backend}.log", bundle)
    bodies = {
        "Ping": ("Ping", grpc_frame(pb.PingRequest()), pb.PingResponse),
        "CheckCoverage read": (
            "CheckCoverage",
            grpc_frame(pb.CheckCoverageRequest(ticket=ticket_msg("BENCH-READ", READ_TICKET))),
            pb.CheckCoverageResponse,
        ),
        "CheckCoverage consume=true, duplicate": (
            "CheckCoverage",
            grpc_frame(pb.CheckCoverageRequest(
                ticket=ticket_msg("BENCH-DUP", ADMIT_TICKET), consume=True
            )),
            pb.CheckCoverageResponse,
        ),
    }
    results = []
    try:
        for method, body, reply_type in bodies.values():
            check_body(port, method, body, reply_type)
        for _ in range(0 if args.admissions_only else args.rounds):
            for name, (method, body, _) in bodies.items():
                slug = re.sub(r"\W+", "-", name).strip("-").lower()
                r = run_h2load(port, method, body, args, work, backend, slug, server=proc)
                r.name = name
                results.append(r)
                print(_row(r), flush=True)
        # Latency at a load the server can carry: half the saturated read throughput, up to
        # the same 50 streams. Saturated latency is queueing (Little's law: streams / rate).
        if not args.admissions_only:
            saturated = statistics.median(
                r.rps for r in results if r.name == "CheckCoverage read"
            )
            method, body, _ = bodies["CheckCoverage read"]
            r = run_h2load(port, method, body, args, work, backend, "paced",
                           rps=saturated * args.paced, server=proc)
            r.name = f"CheckCoverage read at {args.paced:.0%} load"
            results.append(r)
            print(_row(r), flush=True)
        for ping in (True, False):  # the same generator's empty-RPC baseline, then admissions
            r = run_admissions(port, args, backend, proc, ping=ping)
            results.append(r)
            print(_row(r), flush=True)
        r = run_admissions(port, args, backend, proc, rps=results[-1].rps * args.paced)
        results.append(r)
        print(_row(r), flush=True)
        r = run_admissions(port, args, backend, proc, spread=SPREAD_CONTRACTS)
        results.append(r)
        print(_row(r), flush=True)
    finally:
        stop_server(proc)
    for case in ("hot", SPREAD):  # the storage alone, on the same database, right after
        limit = storage_limit.measure(store, case=case, streams=args.streams,
                                      processes=args.load_processes, seconds=args.duration,
                                      contracts=SPREAD_CONTRACTS)
        r = Result(backend, f"storage limit, {case}", "storage", limit.admissions, 0,
                   limit.rps, limit.p50_ms, limit.p99_ms)
        results.append(r)
        print(_row(r), flush=True)
    return results


def _row(r: Result) -> str:
    return (f"{r.backend:<10} {r.name:<44} {r.tool:<11} {r.rps:>9.0f} {r.p50_ms:>8.2f} "
            f"{r.p99_ms:>8.2f} {r.cpu_us:>9.0f} {r.failed:>6}")


def summarize(results: list[Result]) -> dict:
    """Per backend: median req/s per call kind, and the CheckCoverage/Ping ratios."""
    out = {}
    for backend in sorted({r.backend for r in results}):
        mine = [r for r in results if r.backend == backend]
        names = dict.fromkeys((r.name, r.tool) for r in mine)
        rows = {}
        for name, tool in names:
            runs = [r for r in mine if (r.name, r.tool) == (name, tool)]
            key = name if tool == "h2load" else f"{name} ({tool})"
            rows[key] = {
                "rps": statistics.median(r.rps for r in runs),
                "p50_ms": statistics.median(r.p50_ms for r in runs),
                "p99_ms": statistics.median(r.p99_ms for r in runs),
                "cpu_us": statistics.median(r.cpu_us for r in runs),
            }
        out[backend] = {"rows": rows}
        if "Ping" in rows:
            ping, ping_cpu = rows["Ping"]["rps"], rows["Ping"]["cpu_us"]
            read, dup = rows["CheckCoverage read"], rows["CheckCoverage consume=true, duplicate"]
            out[backend] |= {
                "ratio_read_to_ping": read["rps"] / ping,
                "ratio_duplicate_to_ping": dup["rps"] / ping,
                "cpu_ratio_ping_to_read": ping_cpu / read["cpu_us"],
                "cpu_ratio_ping_to_duplicate": ping_cpu / dup["cpu_us"],
            }
        admit = rows.get("CheckCoverage consume=true, distinct tickets (python-grpc)")
        py_ping = rows.get("Ping (python-grpc)")
        if admit and py_ping:
            out[backend]["ratio_admission_to_ping_python"] = admit["rps"] / py_ping["rps"]
            out[backend]["cpu_ratio_ping_to_admission"] = py_ping["cpu_us"] / admit["cpu_us"]
        spread = rows.get(f"CheckCoverage consume=true, distinct tickets, {SPREAD_CONTRACTS} "
                          "contracts (python-grpc)")
        for case, entitle in (("hot", admit), (SPREAD, spread)):
            limit = rows.get(f"storage limit, {case} (storage)")
            if entitle and limit:
                out[backend][f"ratio_admission_to_storage_{case}"] = entitle["rps"] / limit["rps"]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backends", default="sqlite,postgresql")
    default_pg = os.environ.get("ENTITLE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--pg-url", default=os.environ.get("ENTITLE_BENCH_PG", default_pg),
                   help="a PostgreSQL server to create the benchmark database on")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--streams", type=int, default=50, help="concurrent streams (default 50)")
    p.add_argument("--connections", type=int, default=10, help="h2load connections")
    p.add_argument("--duration", type=float, default=10, help="seconds per measurement")
    p.add_argument("--warmup", type=float, default=2, help="h2load warm-up seconds")
    p.add_argument("--rounds", type=int, default=2, help="h2load rounds; medians are reported")
    p.add_argument("--paced", type=float, default=0.5,
                   help="also measure reads paced at this fraction of their saturated rate")
    p.add_argument("--load-processes", type=int, default=2,
                   help="processes of the Python admission load generator")
    p.add_argument("--h2load", default=shutil.which("h2load") or "h2load")
    p.add_argument("--admissions-only", action="store_true",
                   help="only the Python generator's rows (Ping, admissions) and the storage")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    if not shutil.which(args.h2load):
        print("h2load not found: run bench/run_grpc_bench.sh (installs nghttp2-client)",
              file=sys.stderr)
        return 2
    print(f"workers={args.workers} streams={args.streams} connections={args.connections} "
          f"duration={args.duration}s rounds={args.rounds} cpus={os.cpu_count()}")
    print(f"{'backend':<10} {'call':<44} {'tool':<11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'cpu us':>9} {'failed':>6}")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="entitle-grpc-bench-") as tmp:
        work = Path(tmp)
        bundle = bench_bundle(work)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                store = f"sqlite:///{work / 'bench.db'}"
                results += bench_backend(backend, store, args, work, bundle)
            elif backend == "postgresql":
                name = f"entitle_bench_{os.getpid()}"  # runs of others on the server are safe
                store = fresh_pg_database(args.pg_url, name)
                try:
                    results += bench_backend(backend, store, args, work, bundle)
                finally:
                    drop_pg_database(args.pg_url, name)
            else:
                raise SystemExit(f"unknown backend {backend!r}")
    summary = summarize(results)
    print()
    for backend, s in summary.items():
        if "ratio_read_to_ping" in s:
            print(f"{backend}: throughput CheckCoverage read / Ping = "
                  f"{s['ratio_read_to_ping']:.2f}; duplicate admission / Ping = "
                  f"{s['ratio_duplicate_to_ping']:.2f}; server CPU per call Ping / read = "
                  f"{s['cpu_ratio_ping_to_read']:.2f}, Ping / duplicate = "
                  f"{s['cpu_ratio_ping_to_duplicate']:.2f}")
        if "ratio_admission_to_ping_python" in s:
            print(f"{backend}: distinct admissions / Ping (same Python generator) = "
                  f"{s['ratio_admission_to_ping_python']:.2f}; server CPU per call Ping / "
                  f"admission = {s['cpu_ratio_ping_to_admission']:.2f}")
        for case in ("hot", SPREAD):
            if f"ratio_admission_to_storage_{case}" in s:
                print(f"{backend}: distinct admissions / storage limit, {case} = "
                      f"{s[f'ratio_admission_to_storage_{case}']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(
            {"args": vars(args) | {"json": str(args.json)}, "results": [asdict(r) for r in results],
             "summary": summary}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
