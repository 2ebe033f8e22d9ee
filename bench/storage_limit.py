"""The storage's own limit for new admissions: only the SQL of one admission, no entitle.

Against a store URL (the ledger's own schema, migrated by entitle's code), `--streams`
concurrent callers spread over `--processes` processes each run admissions back to back,
one transaction per admission, with the durability entitle uses (SQLite: WAL,
synchronous=FULL, BEGIN IMMEDIATE; PostgreSQL: the server's default synchronous_commit):

- SQLite: BEGIN IMMEDIATE; INSERT the ticket (payload included, duplicate check folded in
  with ON CONFLICT ... RETURNING); upsert the counter with its limit check; COMMIT.
- PostgreSQL: the same as ONE statement (a CTE, autocommit): one round trip per admission,
  the fewest the database allows for a transaction of its own.

Cases: `hot` (every admission counts on one counter row, as the gRPC benchmark's Acme
contract does) and `spread` (admissions spread round robin over `--contracts` counter rows:
no hot row). Prints admissions/s and latency; `--entitle-rps` also prints entitle's ratio.

    .venv/bin/python bench/storage_limit.py --store sqlite:////tmp/limit.db --case hot
    .venv/bin/python bench/storage_limit.py --store "$ENTITLE_TEST_PG" --case spread
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass

from entitle.server.store import open_store
from entitle.server.store.sqlite import BUSY_TIMEOUT_MS

PERIOD = "2026-06"
PAYLOAD_BYTES = 420  # about an admitted decision's serialized size (Acme's backup contract)
CAP = 1e18  # the limit check runs, as for a plan with a limit, but never refuses
SQLITE_PREFIX = "sqlite:///"

INSERT_TICKET = (
    "INSERT INTO ticket_admissions "
    "(ticket_id, contract_id, period_key, amount, payload, admitted_at) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (ticket_id) DO NOTHING RETURNING ticket_id"
)
COUNT = (
    "INSERT INTO usage_counters (contract_id, period_key, used) VALUES (?, ?, ?) "
    "ON CONFLICT (contract_id, period_key) DO UPDATE SET used = usage_counters.used + "
    "excluded.used WHERE usage_counters.used + excluded.used <= ? RETURNING used"
)
ADMIT_ONE_STATEMENT = (  # PostgreSQL: both writes in one statement, one round trip
    "WITH t AS (INSERT INTO ticket_admissions "
    "(ticket_id, contract_id, period_key, amount, payload, admitted_at) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (ticket_id) DO NOTHING "
    "RETURNING contract_id, period_key, amount) "
    "INSERT INTO usage_counters (contract_id, period_key, used) "
    "SELECT contract_id, period_key, amount FROM t "
    "ON CONFLICT (contract_id, period_key) DO UPDATE SET used = usage_counters.used + "
    "excluded.used WHERE usage_counters.used + excluded.used <= %s RETURNING used"
)


@dataclass
class Limit:
    backend: str
    case: str
    admissions: int
    rps: float
    p50_ms: float
    p99_ms: float


def _sqlite_admitter(path: str):
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def admit(ticket_id: str, contract_id: str, payload: bytes, at: str) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            fresh = conn.execute(
                INSERT_TICKET, (ticket_id, contract_id, PERIOD, 1.0, payload, at)
            ).fetchone()
            if fresh is not None:
                conn.execute(COUNT, (contract_id, PERIOD, 1.0, CAP)).fetchone()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    return admit, conn.close


def _postgres_admitter(url: str):
    import psycopg

    conn = psycopg.connect(url, autocommit=True)

    def admit(ticket_id: str, contract_id: str, payload: bytes, at: str) -> None:
        conn.execute(ADMIT_ONE_STATEMENT,
                     (ticket_id, contract_id, PERIOD, 1.0, payload, at, CAP)).fetchone()

    return admit, conn.close


def _admitter(url: str):
    if url.startswith(SQLITE_PREFIX):
        return _sqlite_admitter(url[len(SQLITE_PREFIX):])
    return _postgres_admitter(url)


def _process(url: str, prefix: str, threads: int, seconds: float, case: str, contracts: int,
             start_at: float, queue) -> None:
    """One load process: `threads` callers admitting new tickets until time is up."""
    payload = os.urandom(PAYLOAD_BYTES)
    at = "2026-06-15T10:00:00.000000Z"
    latencies: list[float] = []
    lock = threading.Lock()

    def caller(n: int) -> None:
        admit, close = _admitter(url)
        mine = []
        i = 0
        while time.time() < start_at:
            time.sleep(0.005)
        stop_at = time.monotonic() + seconds
        try:
            while time.monotonic() < stop_at:
                i += 1
                contract = ("limit-hot" if case == "hot"
                            else f"limit-{(n * 7919 + i) % contracts}")
                t0 = time.perf_counter()
                admit(f"{prefix}-{n}-{i}", contract, payload, at)
                mine.append((time.perf_counter() - t0) * 1000)
        finally:
            close()
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=caller, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    queue.put(latencies)


def measure(url: str, *, case: str = "hot", streams: int = 50, processes: int = 2,
            seconds: float = 10.0, contracts: int = 1000) -> Limit:
    """Admissions/s of the storage alone; the ledger at `url` is migrated first."""
    open_store(url).close()
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    per = max(1, streams // processes)
    prefix = f"limit-{case}-{os.getpid()}-{time.time_ns()}"
    start_at = time.time() + 1.0 + 0.1 * streams  # every connection open before the clock runs
    procs = [ctx.Process(target=_process, args=(url, f"{prefix}-{p}", per, seconds, case,
                                                contracts, start_at, queue))
             for p in range(processes)]
    for p in procs:
        p.start()
    latencies: list[float] = []
    for _ in procs:
        latencies += queue.get()
    for p in procs:
        p.join()
    latencies.sort()
    backend = "sqlite" if url.startswith(SQLITE_PREFIX) else "postgresql"
    return Limit(backend, case, len(latencies), len(latencies) / seconds,
                 _pct(latencies, 50), _pct(latencies, 99))


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def row(limit: Limit) -> str:
    return (f"{limit.backend:<10} storage limit, {limit.case:<6} {limit.rps:>9.0f} admissions/s "
            f"p50 {limit.p50_ms:.2f} ms p99 {limit.p99_ms:.2f} ms")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--store", required=True, help="sqlite:///PATH or postgresql://...")
    p.add_argument("--case", choices=("hot", "spread"), default="hot")
    p.add_argument("--streams", type=int, default=50)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--contracts", type=int, default=1000, help="counter rows of the spread case")
    p.add_argument("--entitle-rps", type=float, help="entitle's admissions/s, for the ratio")
    args = p.parse_args()
    limit = measure(args.store, case=args.case, streams=args.streams, processes=args.processes,
                    seconds=args.duration, contracts=args.contracts)
    print(row(limit))
    if args.entitle_rps:
        print(f"entitle / storage limit = {args.entitle_rps / limit.rps:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
