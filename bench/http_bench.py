"""HTTP face throughput and latency: CheckCoverage over HTTP/JSON against the same server's
empty HTTP call (Ping), and against the gRPC face of that same server, in one run.

Starts one `entitle serve` (both listeners, the example bundle, a fixed clock) per store and
drives it with h2load: HTTP/1.1 keep-alive (`--h1`, one call at a time on each of
`--streams` connections: the HTTP face has no HTTP/2) for the Connect calls, HTTP/2 for
gRPC (`--connections` x streams, as bench/grpc_bench.py). Measured, each in its own run
of `--duration` seconds after a warm-up, `--rounds` times (medians are reported):

- HTTP Ping (JSON `{}`): the HTTP face's per-call floor;
- HTTP CheckCoverage read (JSON), and the same in the binary form (`application/proto`);
- gRPC Ping and gRPC CheckCoverage read: the same calls on the other face;

and prints req/s, p50/p99, the server's CPU per call (all its processes) and the ratios:
HTTP read / HTTP Ping, HTTP read / gRPC read, HTTP Ping / gRPC Ping.

    bench/run_grpc_bench.sh --http     # installs h2load if missing, then runs this
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import httpx
from grpc_bench import (
    READ_TICKET,
    Result,
    check_body,
    free_port,
    fresh_pg_database,
    grpc_frame,
    run_h2load,
    start_server,
    stop_server,
    ticket_msg,
)

from entitle.server.service import jsonwire
from entitle.v1 import entitle_pb2 as pb

SERVICE = "/entitle.v1.EntitlementService/"
JSON = ("content-type: application/json",)
PROTO = ("content-type: application/proto",)


def check_http(port: int, method: str, body: bytes, content_type: str) -> None:
    """h2load counts any 2xx as a success: make sure this body gets a 200 answer first."""
    reply = httpx.post(f"http://127.0.0.1:{port}{SERVICE}{method}", content=body,
                       headers={"content-type": content_type}, timeout=10)
    if reply.status_code != 200:
        raise SystemExit(f"{method}: HTTP {reply.status_code}: {reply.text[:500]}")


def bench_backend(backend: str, store: str, args, work: Path) -> list[Result]:
    grpc_port, http_port = free_port(), free_port()
    proc = start_server(store, grpc_port, args.workers, work / f"server-{backend}.log",
                        http_port=http_port)
    read = pb.CheckCoverageRequest(ticket=ticket_msg("BENCH-READ", READ_TICKET))
    # name -> (port, method, body, h2load headers, HTTP/1.1?)
    calls = {
        "HTTP Ping (JSON)": (http_port, "Ping", b"{}", JSON, True),
        "HTTP CheckCoverage read (JSON)": (http_port, "CheckCoverage", jsonwire.to_json(read),
                                           JSON, True),
        "HTTP CheckCoverage read (binary)": (http_port, "CheckCoverage",
                                             read.SerializeToString(), PROTO, True),
        "gRPC Ping": (grpc_port, "Ping", grpc_frame(pb.PingRequest()), None, False),
        "gRPC CheckCoverage read": (grpc_port, "CheckCoverage", grpc_frame(read), None, False),
    }
    results = []
    try:
        for port, method, body, headers, http1 in calls.values():
            if http1:
                check_http(port, method, body, headers[0].split(": ")[1])
            else:
                check_body(port, method, body,
                           pb.PingResponse if method == "Ping" else pb.CheckCoverageResponse)
        for _ in range(args.rounds):
            for name, (port, method, body, headers, http1) in calls.items():
                slug = re.sub(r"\W+", "-", name).strip("-").lower()
                extra = {"headers": headers} if headers else {}
                r = run_h2load(port, method, body, args, work, backend, slug, server=proc,
                               http1=http1, **extra)
                r.name = name
                results.append(r)
                print(_row(r), flush=True)
    finally:
        stop_server(proc)
    return results


def _row(r: Result) -> str:
    return (f"{r.backend:<10} {r.name:<34} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.cpu_us:>9.0f} {r.failed:>6}")


def summarize(results: list[Result]) -> dict:
    out = {}
    for backend in sorted({r.backend for r in results}):
        rows = {}
        for name in dict.fromkeys(r.name for r in results if r.backend == backend):
            runs = [r for r in results if (r.backend, r.name) == (backend, name)]
            rows[name] = {k: statistics.median(getattr(r, k) for r in runs)
                          for k in ("rps", "p50_ms", "p99_ms", "cpu_us")}
        http_ping, http_read = rows["HTTP Ping (JSON)"], rows["HTTP CheckCoverage read (JSON)"]
        grpc_ping, grpc_read = rows["gRPC Ping"], rows["gRPC CheckCoverage read"]
        out[backend] = {
            "rows": rows,
            "http_read_to_http_ping": http_read["rps"] / http_ping["rps"],
            "http_binary_read_to_http_ping":
                rows["HTTP CheckCoverage read (binary)"]["rps"] / http_ping["rps"],
            "http_read_to_grpc_read": http_read["rps"] / grpc_read["rps"],
            "http_ping_to_grpc_ping": http_ping["rps"] / grpc_ping["rps"],
            "cpu_http_read_minus_ping_us": http_read["cpu_us"] - http_ping["cpu_us"],
            "cpu_grpc_read_minus_ping_us": grpc_read["cpu_us"] - grpc_ping["cpu_us"],
        }
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backends", default="sqlite")
    default_pg = os.environ.get("ENTITLE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--pg-url", default=os.environ.get("ENTITLE_BENCH_PG", default_pg))
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--streams", type=int, default=50, help="concurrent calls (default 50)")
    p.add_argument("--connections", type=int, default=10, help="gRPC h2load connections")
    p.add_argument("--duration", type=float, default=10, help="seconds per measurement")
    p.add_argument("--warmup", type=float, default=2, help="h2load warm-up seconds")
    p.add_argument("--rounds", type=int, default=2, help="rounds; medians are reported")
    p.add_argument("--h2load", default=shutil.which("h2load") or "h2load")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    if not shutil.which(args.h2load):
        print("h2load not found: run bench/run_grpc_bench.sh --http", file=sys.stderr)
        return 2
    print(f"workers={args.workers} streams={args.streams} duration={args.duration}s "
          f"rounds={args.rounds} cpus={os.cpu_count()}")
    print(f"{'backend':<10} {'call':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'cpu us':>9} {'failed':>6}")
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="entitle-http-bench-") as tmp:
        work = Path(tmp)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                store = f"sqlite:///{work / 'bench.db'}"
            elif backend == "postgresql":
                store = fresh_pg_database(args.pg_url, "entitle_http_bench")
            else:
                raise SystemExit(f"unknown backend {backend!r}")
            results += bench_backend(backend, store, args, work)
    summary = summarize(results)
    print()
    for backend, s in summary.items():
        print(f"{backend}: HTTP read / HTTP Ping = {s['http_read_to_http_ping']:.2f} "
              f"(binary {s['http_binary_read_to_http_ping']:.2f}); "
              f"HTTP read / gRPC read = {s['http_read_to_grpc_read']:.2f}; "
              f"HTTP Ping / gRPC Ping = {s['http_ping_to_grpc_ping']:.2f}; server CPU a read "
              f"adds to Ping: HTTP {s['cpu_http_read_minus_ping_us']:.0f} us, "
              f"gRPC {s['cpu_grpc_read_minus_ping_us']:.0f} us")
    if args.json:
        args.json.write_text(json.dumps(
            {"args": vars(args) | {"json": str(args.json)},
             "results": [asdict(r) for r in results], "summary": summary},
            indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
