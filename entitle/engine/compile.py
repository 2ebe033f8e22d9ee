"""Stage 3: validated documents to the frozen Policy that evaluation sees."""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable
from datetime import date, datetime

from entitle.engine.durations import parse_duration
from entitle.engine.load import Document
from entitle.engine.model import (
    WEEKDAYS,
    Band,
    Calendar,
    Condition,
    Contract,
    Plan,
    Policy,
    Sla,
    SlaRule,
    Source,
    TargetSpec,
    frozen_map,
)
from entitle.engine.periods import local_midnight

TEMPLATE_ONLY = ("term_months",)


def minute_of_day(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def interval(text: str) -> tuple[int, int]:
    start, end = text.split("-")
    return minute_of_day(start.strip()), minute_of_day(end.strip())


def add_months(d: date, months: int) -> date:
    """Same day `months` later, clamped to the month's last day."""
    index = d.month - 1 + months
    year, month = d.year + index // 12, index % 12 + 1
    return date(year, month, min(d.day, _calendar.monthrange(year, month)[1]))


def merged_contract(doc: Document, templates: dict[str, Document]) -> dict:
    """A contract with its template's fields filled in; its own fields win."""
    data = dict(doc.data)
    template = templates.get(data.get("template", ""))
    if template is None:
        return data
    inherited = {k: v for k, v in template.data.items() if k not in ("kind", "id", "name")}
    term = inherited.pop("term_months", None)
    merged = {**inherited, **data}
    if "end" not in merged and term and isinstance(merged.get("start"), str):
        merged["end"] = add_months(date.fromisoformat(merged["start"]), int(term)).isoformat()
    return merged


def _source(doc: Document) -> Source:
    line, col = doc.locate(("kind",), key=True)
    return Source(doc.path, line, col)


def _targets(spec: dict | None, clock: str, calendar_id: str | None) -> dict:
    out = {}
    for priority, metrics in (spec or {}).items():
        items = []
        for metric, value in (metrics or {}).items():
            this_clock = clock
            if isinstance(value, dict):
                this_clock = value.get("clock", clock)
                value = value["within"]
            items.append(
                TargetSpec(
                    metric,
                    parse_duration(str(value)),
                    this_clock,
                    calendar_id if this_clock == "business" else None,
                )
            )
        out[priority] = tuple(items)
    return frozen_map(out)


def _condition(when: dict | None) -> Condition:
    when = when or {}
    bands, values = {}, {}
    for attr, spec in (when.get("attributes") or {}).items():
        if isinstance(spec, dict):
            bands[attr] = Band(spec.get("min"), spec.get("max"))
        else:
            values[attr] = frozenset(str(v) for v in spec)
    products = when.get("products")
    keywords = when.get("subject_contains")
    return Condition(
        products=frozenset(products) if products is not None else None,
        subject_keywords=tuple(k.lower() for k in keywords) if keywords is not None else None,
        bands=frozen_map(bands),
        values=frozen_map(values),
    )


def _statuses(names: list | None) -> frozenset[str]:
    """Ticket statuses as matched: exactly, after lower-casing."""
    return frozenset(str(n).lower() for n in names or ())


def sla_clock(data: dict) -> str:
    return data.get("clock") or ("business" if data.get("calendar") else "calendar")


def compile_policy(documents: Iterable[Document], revision: str) -> Policy:
    """Build the Policy; only called on documents that validated without errors."""
    docs = list(documents)
    by_kind: dict[str, list[Document]] = {}
    for d in docs:
        by_kind.setdefault(d.data["kind"], []).append(d)

    calendars = {}
    for d in by_kind.get("Calendar", []):
        hours = d.data.get("hours") or {}
        week = tuple(tuple(sorted(interval(i) for i in hours.get(day) or ())) for day in WEEKDAYS)
        once, yearly = set(), set()
        for h in d.data.get("holidays") or ():
            day = date.fromisoformat(h["date"])
            if h.get("yearly"):
                yearly.add((day.month, day.day))
            else:
                once.add(day)
        calendars[d.data["id"]] = Calendar(
            d.data["id"], d.data["timezone"], week, frozenset(once), frozenset(yearly), _source(d)
        )

    slas = {}
    for d in by_kind.get("Sla", []):
        cal, clock = d.data.get("calendar"), sla_clock(d.data)
        rules = tuple(
            SlaRule(
                r.get("name") or f"rule-{i + 1}",
                _condition(r.get("when")),
                _targets(r.get("targets"), clock, cal),
                Source.lazy(d.path, d.locator(("rules", i))),
            )
            for i, r in enumerate(d.data.get("rules") or ())
        )
        slas[d.data["id"]] = Sla(
            d.data["id"], cal, rules, _targets(d.data.get("targets"), clock, cal), _source(d),
            pause_on=_statuses(d.data.get("pause_on")),
            pause_on_by_metric=frozen_map({
                metric: _statuses(statuses)
                for metric, statuses in (d.data.get("pause_on_by_metric") or {}).items()
            }),
            warn_at=tuple(sorted(d.data.get("warn_at") or ())),
        )

    plans = {}
    for d in by_kind.get("Plan", []):
        p = d.data
        alerts = p.get("alerts") or {}
        discontinued = p.get("discontinued")
        if isinstance(discontinued, str):
            discontinued = date.fromisoformat(discontinued)
        per_period = p["type"] == "per_period"
        plans[p["id"]] = Plan(
            id=p["id"],
            type=p["type"],
            unit=p["unit"],
            limit=float(p["limit"]) if p.get("limit") is not None else None,
            reset=p.get("reset") if per_period else None,
            alignment=p.get("alignment", "calendar"),
            when_exhausted=p.get("when_exhausted", "reject"),
            sla_id=p["sla"],
            usage_thresholds=tuple(sorted(alerts.get("usage_percent") or ())),
            expiry_days=tuple(sorted(alerts.get("days_before_expiry") or (), reverse=True)),
            discontinued=discontinued,
            source=_source(d),
        )

    templates = {d.data["id"]: d for d in by_kind.get("ContractTemplate", [])}
    contracts = {}
    midnights: dict[tuple[date, str], datetime] = {}  # few distinct (day, zone) in a bundle

    def midnight(day: date, tz: str) -> datetime:
        at = midnights.get((day, tz))
        if at is None:
            at = midnights[day, tz] = local_midnight(day, tz)
        return at

    for d in by_kind.get("Contract", []):
        c = merged_contract(d, templates)
        tz = c.get("timezone") or "UTC"
        start = date.fromisoformat(c["start"])
        end = date.fromisoformat(c["end"]) if c.get("end") else None
        products = c.get("products")
        if products is not None and "*" in products:
            products = None
        contracts[c["id"]] = Contract(
            id=c["id"],
            customer=str(c["customer"]),
            plan_id=c["plan"],
            products=frozenset(products) if products is not None else None,
            start=start,
            end=end,
            tz=tz,
            start_at=midnight(start, tz),
            end_at=midnight(end, tz) if end else None,
            owner=c.get("owner"),
            notify=tuple(c.get("notify") or ()),
            precedence=c.get("precedence"),
            template_id=c.get("template"),
            suspended=bool(c.get("suspended", False)),
            source=_source(d),
        )
    by_customer: dict[str, list[Contract]] = {}
    for c in sorted(contracts.values(), key=lambda c: c.id):
        by_customer.setdefault(c.customer, []).append(c)
    return Policy(
        revision=revision,
        calendars=frozen_map(calendars),
        slas=frozen_map(slas),
        plans=frozen_map(plans),
        contracts=frozen_map(contracts),
        by_customer=frozen_map({k: tuple(v) for k, v in by_customer.items()}),
    )
