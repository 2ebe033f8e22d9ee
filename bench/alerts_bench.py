"""Alerts: admissions with the alert hook on vs off (one run, interleaved), and sweeps of 100k.

1. Admissions: `check_coverage(consume=True)` against a real store, in rounds that alternate
   hook on / hook off on fresh contracts (so both see the same usage pattern: each contract
   gets `--per-contract` tickets, crossing 80% and, on 10-incident packs, 100% and
   exhaustion), after one warm-up pair, each pair alternating which mode runs first. Prints
   µs per admission for both and the on/off ratio: the median of the pairs' ratios (each
   pair ran back to back), and the ratio of the medians (target: on/off <= 1.10).
2. Sweeps over `--contracts` contracts (built as compiled data, as bench/decide_bench.py
   does): the first sweep of a store (a 400-day catch-up, which emits many alerts), then a
   steady-state sweep one minute later (target: < 5 s), and the domain function alone.

    .venv/bin/python bench/alerts_bench.py [--store sqlite|postgresql://...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from decide_bench import PRODUCTS, build_policy

from entitle.engine.alerts import due_alerts
from entitle.engine.model import frozen_map
from entitle.engine.snapshot import Snapshot
from entitle.engine.ticket import Ticket
from entitle.server.alerts import Sweeper, UsageAlertHook
from entitle.server.clock import FixedClock
from entitle.server.service.admission import check_coverage
from entitle.server.snapshots import SnapshotHolder
from entitle.server.store import AlertQuery, open_store

NOW = datetime(2026, 12, 15, 10, tzinfo=UTC)


def store_url(arg: str, tmp: Path, name: str) -> str:
    if arg == "sqlite":
        return f"sqlite:///{tmp / name}"
    return arg


def fresh_pg(url: str) -> str:
    """A schema of its own so runs do not see each other's rows."""
    import uuid
    from urllib.parse import quote

    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


def bench_admissions(url: str, rounds: int, contracts_per_round: int, per_contract: int) -> dict:
    # Plans cycle per_period (20/month), pack (10), unlimited; use the limited ones only.
    total = (rounds + 1) * 2 * contracts_per_round * 3 // 2 + 3  # + one warm-up pair
    policy = build_policy(total)
    holder = SnapshotHolder()
    holder.swap(Snapshot.build(policy), NOW)
    store = open_store(url)
    inner = UsageAlertHook(holder)
    in_hook = [0.0]

    def hook(change):
        t0 = time.perf_counter()
        try:
            return inner(change)
        finally:
            in_hook[0] += time.perf_counter() - t0

    limited = [c for c in policy.contracts.values()
               if policy.plans[c.plan_id].limit is not None]
    times: dict[bool, list[float]] = {True: [], False: []}
    outcomes = {True: 0, False: 0}
    serial = 0
    try:
        with holder.lease() as snapshot:
            for r in range((rounds + 1) * 2):
                # Pairs alternate which mode goes first (on-off, off-on, ...) so a drift
                # within a pair (the store growing, caches) favours neither mode.
                on = (r % 2 == 0) == ((r // 2) % 2 == 0)
                chunk = limited[r * contracts_per_round:(r + 1) * contracts_per_round]
                tickets = []
                for _ in range(per_contract):
                    for c in chunk:
                        serial += 1
                        product = next(iter(c.products)) if c.products else PRODUCTS[0]
                        tickets.append(Ticket(
                            f"t-{serial}", c.customer, product, "high", NOW,
                            subject="question", attributes=frozen_map({"license_count": 5.0}),
                        ))
                start = time.perf_counter()
                for t in tickets:
                    answer = check_coverage(
                        snapshot, store, t, NOW, consume=True,
                        on_commit_alerts=hook if on else None,
                    )
                    outcomes[on] += answer.admitted
                elapsed = time.perf_counter() - start
                if r >= 2:  # the first pair warms up the store, the caches and the files
                    times[on].append(elapsed / len(tickets))
        alerts = len(store.alerts(AlertQuery(limit=1_000_000))[0])
    finally:
        store.close()
        holder.close()
    on_us = statistics.median(times[True]) * 1e6
    off_us = statistics.median(times[False]) * 1e6
    pairs = [a / b for a, b in zip(times[True], times[False], strict=True)]
    return {
        "admissions_per_mode": outcomes[True],
        "alerts_emitted": alerts,
        "on_us": on_us,
        "off_us": off_us,
        "ratio": statistics.median(pairs),  # the paired estimate: each pair ran back to back
        "ratio_of_medians": on_us / off_us,
        "rounds": [round(x, 3) for x in pairs],
        "hook_us": in_hook[0] / outcomes[True] * 1e6,
    }


def bench_sweep(url: str, contracts: int) -> dict:
    t0 = time.perf_counter()
    policy = build_policy(contracts)
    built = time.perf_counter() - t0
    holder = SnapshotHolder()
    holder.swap(Snapshot.build(policy), NOW)
    store = open_store(url)
    clock = FixedClock(NOW)
    sweeper = Sweeper(store, holder, clock, retention_days=90)
    out: dict = {"contracts": contracts, "build_s": built}
    try:
        t0 = time.perf_counter()
        out["catch_up_alerts"] = sweeper.sweep()
        out["catch_up_s"] = time.perf_counter() - t0
        steady = []
        for minute in range(1, 4):
            clock.at = NOW + timedelta(minutes=minute)
            t0 = time.perf_counter()
            sweeper.sweep()
            steady.append(time.perf_counter() - t0)
        out["steady_s"] = statistics.median(steady)
        # A month's worth at once (e.g. after an outage): the domain function alone.
        pairs = [(c, policy.plans[c.plan_id]) for c in policy.contracts.values()]
        t0 = time.perf_counter()
        day = due_alerts(pairs, NOW, NOW + timedelta(days=30))
        out["domain_day_s"] = time.perf_counter() - t0
        out["domain_day_alerts"] = len(day)
    finally:
        store.close()
        holder.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--store", default="sqlite", help="sqlite (a temp file) or a PostgreSQL URL")
    p.add_argument("--rounds", type=int, default=10, help="hook-on/hook-off round pairs")
    p.add_argument("--contracts-per-round", type=int, default=60)
    p.add_argument("--per-contract", type=int, default=10, help="admissions per contract")
    p.add_argument("--contracts", type=int, default=100_000, help="contracts swept")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        urls = [store_url(args.store, root, f"{n}.db") for n in ("admit", "sweep")]
        if args.store != "sqlite":
            urls = [fresh_pg(u) for u in urls]
        backend = "sqlite" if args.store == "sqlite" else "postgresql"
        a = bench_admissions(urls[0], args.rounds, args.contracts_per_round, args.per_contract)
        print(f"admissions ({backend}): {a['admissions_per_mode']} per mode, "
              f"{a['alerts_emitted']} alerts emitted with the hook on")
        print(f"  hook off: {a['off_us']:.0f} µs/admission   hook on: {a['on_us']:.0f} µs/admission"
              f"   ratio on/off (median of pairs): {a['ratio']:.3f} (target <= 1.10); "
              f"of medians: {a['ratio_of_medians']:.3f}")
        print(f"  per round pair: {a['rounds']}")
        print(f"  time inside the hook: {a['hook_us']:.1f} µs/admission "
              f"({100 * a['hook_us'] / a['off_us']:.1f}% of an admission without it)")
        s = bench_sweep(urls[1], args.contracts)
        print(f"sweep ({backend}) over {s['contracts']:,} contracts "
              f"(built in {s['build_s']:.1f} s):")
        print(f"  first sweep (400-day catch-up): {s['catch_up_s']:.2f} s, "
              f"{s['catch_up_alerts']:,} alerts appended")
        print(f"  steady sweep (1-minute window): {s['steady_s']:.2f} s (target < 5 s)")
        print(f"  due_alerts() alone, 30-day window: {s['domain_day_s']:.2f} s, "
              f"{s['domain_day_alerts']:,} alerts")


if __name__ == "__main__":
    main()
