"""Generate a large, valid policy bundle (plans, SLAs, calendars, contracts) for benchmarks."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC", "Australia/Sydney")
PLAN_SHAPES = (
    ("per_period", "incidents", "monthly", 20),
    ("per_period", "incidents", "weekly", 100),
    ("per_period", "hours", "quarterly", 40),
    ("pack", "incidents", None, 10),
    ("pack", "hours", None, 50),
    ("unlimited", "incidents", None, None),
)
PRODUCTS = ("backup", "security", "sync", "analytics", "mail", "vpn")


def generate(out: Path, plans: int, contracts: int, seed: int = 7) -> None:
    """Write calendars.yaml, slas.yaml, plans.yaml and contracts-NNN.yaml files under `out`."""
    rnd = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    calendars = []
    for i, zone in enumerate(ZONES):
        calendars.append(
            f"kind: Calendar\nid: cal-{i}\ntimezone: {zone}\nhours:\n"
            + "".join(f'  {d}: ["08:00-12:00", "13:00-18:00"]\n' for d in ("mon", "tue", "wed"))
            + "".join(f'  {d}: ["08:00-17:00"]\n' for d in ("thu", "fri"))
            + "holidays:\n  - {date: 2026-12-25, name: Christmas Day, yearly: true}\n"
        )
    (out / "calendars.yaml").write_text("---\n".join(calendars))

    slas = []
    for i in range(plans):
        slas.append(
            f"kind: Sla\nid: sla-{i}\ncalendar: cal-{i % len(ZONES)}\ntargets:\n"
            f"  urgent: {{first_response: {30 + i % 30}m, resolution: 4h}}\n"
            "  high: {first_response: 1h, resolution: 8h}\n"
            "  medium: {first_response: 4h, resolution: 16h}\n"
            "  low: {first_response: 8h}\n"
            "rules:\n"
            "  - name: large\n    when:\n      attributes:\n"
            f"        license_count: {{min: {50 + i % 50}}}\n"
            "    targets:\n      urgent: {first_response: 15m, resolution: 2h}\n"
            "  - name: outage\n    when:\n      subject_contains: [outage, down]\n"
            "    targets:\n      high: {first_response: 30m, resolution: 4h}\n"
        )
    (out / "slas.yaml").write_text("---\n".join(slas))

    docs = []
    for i in range(plans):
        kind, unit, reset, limit = PLAN_SHAPES[i % len(PLAN_SHAPES)]
        doc = f"kind: Plan\nid: plan-{i}\ntype: {kind}\nunit: {unit}\nsla: sla-{i}\n"
        if limit is not None:
            doc += f"limit: {limit}\n"
        if reset:
            doc += f"reset: {reset}\nalignment: {'anniversary' if i % 2 else 'calendar'}\n"
        doc += "alerts:\n  usage_percent: [80, 100]\n  days_before_expiry: [90, 30, 7]\n"
        docs.append(doc)
    (out / "plans.yaml").write_text("---\n".join(docs))

    per_file = 5000
    for f in range(0, contracts, per_file):
        docs = []
        for n in range(f, min(f + per_file, contracts)):
            year = 2025 + n % 2
            month = 1 + n % 12
            product = PRODUCTS[n % len(PRODUCTS)]
            docs.append(
                f"kind: Contract\nid: c-{n}\ncustomer: cust-{n}\n"
                f"plan: plan-{rnd.randrange(plans)}\n"
                f"products: [{product}]\nstart: {year}-{month:02d}-01\n"
                f"end: {year + 1}-{month:02d}-01\ntimezone: {ZONES[n % len(ZONES)]}\n"
                f"notify: [desk-{n % 97}@support.example]\n"
            )
        (out / f"contracts-{f // per_file:03d}.yaml").write_text("---\n".join(docs))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("--plans", type=int, default=1000)
    p.add_argument("--contracts", type=int, default=100_000)
    args = p.parse_args()
    generate(args.out, args.plans, args.contracts)


if __name__ == "__main__":
    main()
