"""Reports on a policy and its usage at one instant: renewals, usage, contracts by group.

Pure: a report is built from a Policy, a UsageView (anything with `used(contract, period)`:
the store, or StaticUsage) and an instant, and rendered as a terminal table, CSV or JSON.
Row values are plain JSON values (text, numbers, null), the same in every format.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from entitle.engine.calendars import earlier, later
from entitle.engine.decide import UsageView, quota_for, quotas_for
from entitle.engine.model import Contract, Policy
from entitle.engine.periods import lifecycle

GROUPINGS = ("product", "owner", "plan")
ALL_PRODUCTS = "*"  # the product group of contracts covering every product
NO_OWNER = "-"
BAR_WIDTH = 8
RENEWAL_LEAD = timedelta(days=7)  # a renewal may start this long before the contract ends
USAGE_BATCH = 400  # periods whose usage one read asks for (a statement has bounded size)


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    kind: str = "text"  # text | number | percent


@dataclass(frozen=True)
class Report:
    name: str
    as_of: datetime
    params: dict
    columns: tuple[Column, ...]
    rows: tuple[dict, ...]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _state(contract: Contract, at: datetime) -> str:
    return "suspended" if contract.suspended else lifecycle(contract, at)


def _percent_used(policy: Policy, usage: UsageView, contract: Contract, at: datetime):
    """Percent of the current period's quota used; None for unlimited plans or off-term."""
    if lifecycle(contract, at) != "active":
        return None
    plan = policy.plans[contract.plan_id]
    return quota_for(plan, contract, at, usage).percent_used


def _percents_used(
    policy: Policy, usage: UsageView, contracts: list[Contract], at: datetime
) -> dict[str, float | None]:
    """_percent_used of many contracts, their usage read USAGE_BATCH periods at a time."""
    live = [(c, policy.plans[c.plan_id]) for c in contracts if lifecycle(c, at) == "active"]
    out: dict[str, float | None] = {}
    for i in range(0, len(live), USAGE_BATCH):
        chunk = live[i:i + USAGE_BATCH]
        for (c, _), quota in zip(chunk, quotas_for(chunk, at, usage), strict=True):
            out[c.id] = quota.percent_used
    return out


def _covers_all_of(renewal: Contract, contract: Contract) -> bool:
    """`renewal` covers every product `contract` covers (the same ones or more)."""
    if renewal.products is None:
        return True
    return contract.products is not None and contract.products <= renewal.products


def _renews(candidate: Contract, contract: Contract) -> bool:
    """`candidate` takes over when `contract` ends: same customer, products kept, starts then.

    It may start up to RENEWAL_LEAD before the end (a renewal signed to overlap a little);
    one starting earlier runs alongside `contract` and is no renewal of it.
    """
    if contract.end_at is None or candidate.id == contract.id:
        return False
    return (
        candidate.customer == contract.customer
        and candidate.start_at >= earlier(contract.end_at, RENEWAL_LEAD)
        and (candidate.end_at is None or candidate.end_at > contract.end_at)
        and _covers_all_of(candidate, contract)
    )


def _renewal_of(contract: Contract, candidates: Iterable[Contract]) -> str | None:
    """The renewal that starts first (then by id), or None."""
    found = [c for c in candidates if _renews(c, contract)]
    return min(found, key=lambda c: (c.start_at, c.id)).id if found else None


RENEWAL_COLUMNS = (
    Column("contract", "CONTRACT"), Column("customer", "CUSTOMER"), Column("plan", "PLAN"),
    Column("owner", "OWNER"), Column("recipients", "RECIPIENTS"), Column("state", "STATE"),
    Column("ends", "ENDS"), Column("days_left", "DAYS LEFT", "number"),
    Column("quota_used", "QUOTA USED", "percent"), Column("renewed_by", "RENEWED BY"),
)


def ending_within(policy: Policy, at: datetime, within: timedelta) -> list[Contract]:
    """Contracts whose end falls in [at, at + within), soonest first (then by id)."""
    horizon = later(at, within)  # `--now` late in 9999: to the end of time
    return sorted(
        (c for c in policy.contracts.values()
         if c.end_at is not None and at <= c.end_at < horizon),
        key=lambda c: (c.end_at, c.id),
    )


def renewal_rows(
    policy: Policy, usage: UsageView, ending: list[Contract], at: datetime
) -> tuple[dict, ...]:
    """The renewals report's rows of these contracts (a page of ending_within, or all)."""
    percents = _percents_used(policy, usage, ending, at)
    return tuple({
        "contract": c.id,
        "customer": c.customer,
        "plan": c.plan_id,
        "owner": c.owner,
        "recipients": " ".join(c.notify) or None,
        "state": _state(c, at),
        "ends": c.end.isoformat() if c.end else None,
        "days_left": round((c.end_at - at).total_seconds() / 86400, 1),
        "quota_used": percents.get(c.id),
        "renewed_by": _renewal_of(c, policy.by_customer.get(c.customer, ())),
    } for c in ending)


def renewals(policy: Policy, usage: UsageView, at: datetime, within: timedelta) -> Report:
    """Contracts in their term (or planned) whose end falls in [at, at + within), soonest first."""
    rows = renewal_rows(policy, usage, ending_within(policy, at, within), at)
    days = within.total_seconds() / 86400
    return Report("renewals", at, {"within_days": days}, RENEWAL_COLUMNS, rows)


def usage_report(
    policy: Policy, usage: UsageView, at: datetime, customer: str | None = None
) -> Report:
    """Each contract in its term at `at`: its current period's usage against the limit."""
    contracts = (
        policy.by_customer.get(customer, ()) if customer else policy.contracts.values()
    )
    rows = []
    for c in sorted(contracts, key=lambda c: (c.customer, c.id)):
        if lifecycle(c, at) != "active":
            continue
        plan = policy.plans[c.plan_id]
        q = quota_for(plan, c, at, usage)
        rows.append({
            "customer": c.customer,
            "contract": c.id,
            "plan": plan.id,
            "state": _state(c, at),
            "period": q.period_key,
            "unit": q.unit,
            "used": q.used,
            "limit": q.limit,
            "remaining": q.remaining,
            "quota_used": q.percent_used,
        })
    columns = (
        Column("customer", "CUSTOMER"), Column("contract", "CONTRACT"), Column("plan", "PLAN"),
        Column("state", "STATE"), Column("period", "PERIOD"), Column("unit", "UNIT"),
        Column("used", "USED", "number"), Column("limit", "LIMIT", "number"),
        Column("remaining", "REMAINING", "number"), Column("quota_used", "QUOTA USED", "percent"),
    )
    return Report("usage", at, {"customer": customer}, columns, tuple(rows))


def _groups_of(by: str) -> Callable[[Contract], Iterable[str]]:
    if by == "product":
        return lambda c: sorted(c.products) if c.products is not None else (ALL_PRODUCTS,)
    if by == "owner":
        return lambda c: (c.owner or NO_OWNER,)
    if by == "plan":
        return lambda c: (c.plan_id,)
    raise ValueError(f"cannot group contracts by {by!r}: use one of {', '.join(GROUPINGS)}")


def contracts_by(policy: Policy, usage: UsageView, at: datetime, by: str) -> Report:
    """Contracts counted per product, owner or plan, by state, with their mean quota used."""
    groups_of = _groups_of(by)
    groups: dict[str, list[Contract]] = {}
    for c in policy.contracts.values():
        for g in groups_of(c):
            groups.setdefault(g, []).append(c)
    rows = []
    for name in sorted(groups):
        members = sorted(groups[name], key=lambda c: c.id)
        states = [_state(c, at) for c in members]
        percents = [p for c in members if (p := _percent_used(policy, usage, c, at)) is not None]
        rows.append({
            by: name,
            "contracts": len(members),
            "active": states.count("active"),
            "planned": states.count("planned"),
            "expired": states.count("expired"),
            "suspended": states.count("suspended"),
            "quota_used": round(sum(percents) / len(percents), 4) if percents else None,
            "contract_ids": " ".join(c.id for c in members),
        })
    columns = (
        Column(by, by.upper()), Column("contracts", "CONTRACTS", "number"),
        Column("active", "ACTIVE", "number"), Column("planned", "PLANNED", "number"),
        Column("expired", "EXPIRED", "number"), Column("suspended", "SUSPENDED", "number"),
        Column("quota_used", "MEAN QUOTA USED", "percent"), Column("contract_ids", "IDS"),
    )
    return Report("contracts", at, {"by": by}, columns, tuple(rows))


# -- rendering ------------------------------------------------------------------------------
def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def bar(percent: float, width: int = BAR_WIDTH) -> str:
    """`████░░░░` for 50%: the share used, capped at full."""
    filled = max(0, min(width, round(percent / 100 * width)))
    return "█" * filled + "░" * (width - filled)


def _cell(column: Column, value, bars: bool) -> str:
    if value is None:
        return "-"
    if column.kind == "percent":
        text = f"{value:.0f}%"
        return f"{bar(value)} {text:>4}" if bars else text
    if column.kind == "number":
        return _number(value)
    return str(value)


def render_text(report: Report, *, bars: bool = False) -> str:
    """An aligned table (numbers right-aligned); `bars` adds a quota bar (for terminals)."""
    if not report.rows:
        return f"no {report.name} to report as of {_iso(report.as_of)}\n"
    cells = [[_cell(col, row[col.key], bars) for col in report.columns] for row in report.rows]
    widths = [
        max(len(col.title), *(len(r[i]) for r in cells)) for i, col in enumerate(report.columns)
    ]

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if col.kind != "text" else v.ljust(w)
            for v, w, col in zip(values, widths, report.columns, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line([col.title for col in report.columns])]
    out += [line(r) for r in cells]
    return "\n".join(out) + "\n"


def render_csv(report: Report) -> str:
    """A header of column keys, then one line per row; null values are empty cells."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([col.key for col in report.columns])
    for row in report.rows:
        writer.writerow(["" if row[c.key] is None else row[c.key] for c in report.columns])
    return buf.getvalue()


def render_json(report: Report) -> str:
    doc = {
        "report": report.name,
        "as_of": _iso(report.as_of),
        **report.params,
        "rows": list(report.rows),
    }
    return json.dumps(doc, indent=2) + "\n"
