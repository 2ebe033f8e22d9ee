"""Decisions per second in one process, by contract count and with/without the rule cache.

Builds compiled policies directly (evaluation only ever sees compiled data), so 1M
contracts need no YAML. Prints decisions/s, p50/p99 per decision, and the share of decision time
spent selecting SLA rules (durable-rules, plus the cache lookup when it is on).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, date, datetime

from entitle.engine.decide import decide
from entitle.engine.model import (
    Band,
    Calendar,
    Condition,
    Contract,
    Plan,
    Policy,
    Sla,
    SlaRule,
    TargetSpec,
    frozen_map,
)
from entitle.engine.periods import local_midnight
from entitle.engine.snapshot import Snapshot
from entitle.engine.ticket import Ticket
from entitle.engine.usage import StaticUsage

ZONES = ("Europe/Berlin", "America/New_York", "UTC")
PRODUCTS = ("backup", "security", "sync", "analytics")


def build_policy(contracts: int, plans: int = 100) -> Policy:
    """`plans` plans and SLAs (each with a band rule and a keyword rule), `contracts` contracts."""
    week = tuple(((480, 720), (780, 1080)) if d < 5 else () for d in range(7))
    calendars = {f"cal-{i}": Calendar(f"cal-{i}", z, week) for i, z in enumerate(ZONES)}

    def targets(minutes: float, cal: str) -> dict:
        return {
            p: (
                TargetSpec("first_response", minutes, "business", cal),
                TargetSpec("resolution", minutes * 4, "business", cal),
            )
            for p in ("low", "medium", "high", "urgent")
        }

    slas, plan_map = {}, {}
    shapes = (("per_period", 20, "monthly"), ("pack", 10, None), ("unlimited", None, None))
    for i in range(plans):
        cal = f"cal-{i % len(ZONES)}"
        rules = (
            SlaRule("large", Condition(bands=frozen_map({"license_count": Band(50 + i % 50)})),
                    frozen_map(targets(30, cal))),
            SlaRule("outage", Condition(subject_keywords=("outage", "down")),
                    frozen_map(targets(15, cal))),
        )
        slas[f"sla-{i}"] = Sla(f"sla-{i}", cal, rules, frozen_map(targets(60, cal)))
        kind, limit, reset = shapes[i % len(shapes)]
        plan_map[f"plan-{i}"] = Plan(
            f"plan-{i}", kind, "incidents", limit, reset, "calendar", "reject", f"sla-{i}",
            (80, 100), (90, 30, 7),
        )
    all_contracts, by_customer = {}, {}
    for n in range(contracts):
        tz = ZONES[n % len(ZONES)]
        start, end = date(2026, 1 + n % 12, 1), date(2027, 1 + n % 12, 1)
        c = Contract(
            f"c-{n}", f"cust-{n}", f"plan-{n % plans}", frozenset({PRODUCTS[n % len(PRODUCTS)]}),
            start, end, tz, local_midnight(start, tz), local_midnight(end, tz),
        )
        all_contracts[c.id] = c
        by_customer[c.customer] = (c,)
    return Policy(
        "bench", frozen_map(calendars), frozen_map(slas), frozen_map(plan_map),
        frozen_map(all_contracts), frozen_map(by_customer),
    )


def run(contracts: int, cache: bool, decisions: int, seed: int = 1) -> dict:
    policy = build_policy(contracts)
    snapshot = Snapshot.build(policy, cache_size=10000 if cache else 0)
    rnd = random.Random(seed)
    now = datetime(2026, 12, 15, 10, tzinfo=UTC)
    usage = StaticUsage()
    tickets = []
    for i in range(decisions):
        n = rnd.randrange(contracts)
        tickets.append(
            Ticket(
                f"t-{i}", f"cust-{n}", PRODUCTS[n % len(PRODUCTS)],
                ("low", "medium", "high", "urgent")[i % 4], now,
                subject="backup outage" if i % 5 == 0 else "question",
                attributes=frozen_map({"license_count": float(rnd.randrange(1, 200))}),
            )
        )
    in_rules = [0.0]
    select = type(snapshot.rules).select_sla_rule

    def timed_select(self, *args):
        t0 = time.perf_counter()
        try:
            return select(self, *args)
        finally:
            in_rules[0] += time.perf_counter() - t0

    type(snapshot.rules).select_sla_rule = timed_select
    lat = []
    try:
        start = time.perf_counter()
        for t in tickets:
            t0 = time.perf_counter()
            decide(snapshot, usage, t, now)
            lat.append(time.perf_counter() - t0)
        total = time.perf_counter() - start
    finally:
        type(snapshot.rules).select_sla_rule = select
    stats = snapshot.rules.stats()
    snapshot.close()
    lat.sort()
    return {
        "contracts": contracts,
        "cache": cache,
        "decisions_per_s": decisions / total,
        "p50_us": statistics.median(lat) * 1e6,
        "p99_us": lat[int(len(lat) * 0.99)] * 1e6,
        "rules_share": in_rules[0] / total,
        "rules": stats,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--decisions", type=int, default=20000)
    p.add_argument("--sizes", default="1000,1000000")
    args = p.parse_args()
    print(
        f"{'contracts':>10} {'cache':>6} {'decisions/s':>12} {'p50 us':>8} {'p99 us':>8} "
        f"{'in rules':>8}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        for cache in (True, False):
            r = run(size, cache, args.decisions)
            print(
                f"{size:>10} {'on' if cache else 'off':>6} {r['decisions_per_s']:>12.0f} "
                f"{r['p50_us']:>8.0f} {r['p99_us']:>8.0f} {r['rules_share']:>8.0%}   {r['rules']}"
            )


if __name__ == "__main__":
    main()
