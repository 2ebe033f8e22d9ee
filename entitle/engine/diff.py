"""What changed between two compiled policies, and which changes break running contracts.

Pure and linear in the bundle size: `entitle diff` uses it in CI and the server's hot reload
uses it to refuse breaking revisions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from operator import attrgetter
from typing import Any

from entitle.engine.durations import format_minutes
from entitle.engine.model import (
    METRICS,
    PRIORITIES,
    WEEKDAYS,
    Calendar,
    Contract,
    Plan,
    Policy,
    Sla,
    SlaRule,
    Source,
    TargetSpec,
)

NAMED_CONTRACTS = 5  # contracts named in one message before "and N more"


@dataclass(frozen=True)
class Change:
    """One difference; `breaking` ones would change how existing contracts are counted."""

    kind: str  # e.g. "plan.type_changed"
    breaking: bool
    subject: str  # e.g. "plan premium-monthly"
    message: str
    source: Source | None = None  # in head, or in base for removals

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{'BREAKING' if self.breaking else 'ok'} {where}{self.message}"

    def to_json(self) -> dict:
        src = self.source
        return {
            "kind": self.kind,
            "breaking": self.breaking,
            "subject": self.subject,
            "message": self.message,
            "path": src.path if src else None,
            "line": src.line if src else None,
            "col": src.col if src else None,
        }


def diff_policies(base: Policy, head: Policy) -> list[Change]:
    """Every change from `base` to `head`: calendars, SLAs, plans, then contracts, by id."""
    changes: list[Change] = []
    changes += _diff_calendars(base, head)
    changes += _diff_slas(base, head)
    changes += _diff_plans(base, head)
    changes += _diff_contracts(base, head)
    return changes


# --- helpers -------------------------------------------------------------------------------


def _contracts_by_plan(contracts: Iterable[Contract]) -> dict[str, list[str]]:
    users: dict[str, list[str]] = defaultdict(list)
    for c in contracts:
        users[c.plan_id].append(c.id)
    return users


def _agree(count: int, one: str, many: str) -> str:
    """The verb for `count` subjects: 'contract a uses it', 'contracts a, b use it'."""
    return one if count == 1 else many


def _name_contracts(ids: Iterable[str]) -> str:
    """'contract a' / 'contracts a, b and 3 more': enough to find them, short enough to read."""
    ids = sorted(set(ids))
    shown = ", ".join(ids[:NAMED_CONTRACTS])
    more = len(ids) - NAMED_CONTRACTS
    noun = "contract" if len(ids) == 1 else "contracts"
    return f"{noun} {shown}" + (f" and {more} more" if more > 0 else "")


def _listed(labels: Iterable[str] | None) -> tuple[str, int]:
    """('SLA a, SLA b', 2): referrers named in full, and how many."""
    names = sorted(labels or ())
    return ", ".join(names), len(names)


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, frozenset | set):
        return "[" + ", ".join(sorted(str(v) for v in value)) + "]"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _added_removed(
    kind: str,
    label: str,
    base: Mapping[str, Any],
    head: Mapping[str, Any],
    users_of: Callable[[str], tuple[str, int]],
) -> tuple[list[Change], list[str]]:
    """Additions and removals of one kind (removals breaking while referenced); common ids.
    `users_of(id)` names what still refers to it, and how many they are."""
    changes = []
    for id_ in sorted(head.keys() - base.keys()):
        changes.append(Change(f"{kind}.added", False, f"{label} {id_}",
                              f"{label} {id_} added", head[id_].source))
    for id_ in sorted(base.keys() - head.keys()):
        refs, count = users_of(id_)
        subject = f"{label} {id_}"
        if count:
            verb = _agree(count, "references", "reference")
            changes.append(Change(f"{kind}.removed", True, subject,
                                  f"{subject} removed but {refs} still {verb} it",
                                  base[id_].source))
        else:
            changes.append(Change(f"{kind}.removed", False, subject,
                                  f"{subject} removed (unreferenced)", base[id_].source))
    return changes, sorted(base.keys() & head.keys())


# --- calendars -----------------------------------------------------------------------------


def _calendar_users(head: Policy) -> dict[str, list[str]]:
    users: dict[str, list[str]] = defaultdict(list)
    for sla in head.slas.values():
        ids = {sla.calendar_id} if sla.calendar_id else set()
        for targets in [sla.default, *(r.targets for r in sla.rules)]:
            ids |= {t.calendar_id for specs in targets.values() for t in specs if t.calendar_id}
        for cal in sorted(ids):
            users[cal].append(f"SLA {sla.id}")
    return users


def _fmt_intervals(day: tuple[tuple[int, int], ...]) -> str:
    def hhmm(m: int) -> str:
        return f"{m // 60:02d}:{m % 60:02d}"

    return ", ".join(f"{hhmm(a)}-{hhmm(b)}" for a, b in day) or "closed"


def _diff_calendars(base: Policy, head: Policy) -> list[Change]:
    users = _calendar_users(head)
    changes, common = _added_removed(
        "calendar", "calendar", base.calendars, head.calendars, lambda i: _listed(users.get(i))
    )
    for id_ in common:
        old: Calendar = base.calendars[id_]
        new: Calendar = head.calendars[id_]
        subject, src = f"calendar {id_}", new.source
        if old.tz != new.tz:
            changes.append(Change("calendar.timezone_changed", False, subject,
                                  f"{subject}: timezone {old.tz} -> {new.tz}", src))
        days = [
            f"{WEEKDAYS[i]} {_fmt_intervals(a)} -> {_fmt_intervals(b)}"
            for i, (a, b) in enumerate(zip(old.week, new.week, strict=True))
            if a != b
        ]
        if days:
            changes.append(Change("calendar.hours_changed", False, subject,
                                  f"{subject}: hours changed: {'; '.join(days)}", src))
        parts = [f"+{d}" for d in sorted(new.holidays - old.holidays)]
        parts += [f"-{d}" for d in sorted(old.holidays - new.holidays)]
        parts += [f"+yearly {m:02d}-{d:02d}"
                  for m, d in sorted(new.yearly_holidays - old.yearly_holidays)]
        parts += [f"-yearly {m:02d}-{d:02d}"
                  for m, d in sorted(old.yearly_holidays - new.yearly_holidays)]
        if parts:
            changes.append(Change("calendar.holidays_changed", False, subject,
                                  f"{subject}: holidays {' '.join(parts)}", src))
    return changes


# --- SLAs ----------------------------------------------------------------------------------


def _fmt_target(spec: TargetSpec | None) -> str:
    if spec is None:
        return "none"
    clock = f" on {spec.calendar_id}" if spec.clock == "business" and spec.calendar_id else ""
    return f"{format_minutes(spec.minutes)} {spec.clock}{clock}"


def _target_changes(old: Mapping[str, tuple[TargetSpec, ...]],
                    new: Mapping[str, tuple[TargetSpec, ...]]) -> list[str]:
    """'urgent resolution 4h business -> 3h business' for each priority/metric that moved."""
    out = []
    for prio in sorted(old.keys() | new.keys(),
                       key=lambda p: PRIORITIES.index(p) if p in PRIORITIES else len(PRIORITIES)):
        before = {t.metric: t for t in old.get(prio, ())}
        after = {t.metric: t for t in new.get(prio, ())}
        for metric in sorted(before.keys() | after.keys(),
                             key=lambda m: METRICS.index(m) if m in METRICS else len(METRICS)):
            a, b = before.get(metric), after.get(metric)
            if a != b:
                out.append(f"{prio} {metric} {_fmt_target(a)} -> {_fmt_target(b)}")
    return out


def _rule_key(rule: SlaRule) -> tuple:
    return (rule.when, tuple(sorted((p, t) for p, t in rule.targets.items())))


def _rule_changes(old: tuple[SlaRule, ...], new: tuple[SlaRule, ...]) -> list[str]:
    before = {r.name: r for r in old}
    after = {r.name: r for r in new}
    out = [f"rule {n!r} added" for n in after if n not in before]
    out += [f"rule {n!r} removed" for n in before if n not in after]
    for name, rule in after.items():
        if name in before and _rule_key(before[name]) != _rule_key(rule):
            moved = _target_changes(before[name].targets, rule.targets)
            detail = f" ({'; '.join(moved)})" if moved else ""
            if before[name].when != rule.when:
                detail = " (condition changed" + (f"; {'; '.join(moved)})" if moved else ")")
            out.append(f"rule {name!r} changed{detail}")
    kept_old = [r.name for r in old if r.name in after]
    kept_new = [r.name for r in new if r.name in before]
    if kept_old != kept_new:
        out.append("rules reordered: " + ", ".join(kept_new))
    return out


def _diff_slas(base: Policy, head: Policy) -> list[Change]:
    users: dict[str, list[str]] = defaultdict(list)
    for plan in head.plans.values():
        users[plan.sla_id].append(f"plan {plan.id}")
    changes, common = _added_removed(
        "sla", "SLA", base.slas, head.slas, lambda i: _listed(users.get(i))
    )
    for id_ in common:
        old: Sla = base.slas[id_]
        new: Sla = head.slas[id_]
        subject, src = f"SLA {id_}", new.source
        if old.calendar_id != new.calendar_id:
            changes.append(Change("sla.calendar_changed", False, subject,
                                  f"{subject}: calendar {_show(old.calendar_id)} -> "
                                  f"{_show(new.calendar_id)}", src))
        moved = _target_changes(old.default, new.default)
        if moved:
            changes.append(Change("sla.targets_changed", False, subject,
                                  f"{subject}: default targets: {'; '.join(moved)}", src))
        rules = _rule_changes(old.rules, new.rules)
        if rules:
            changes.append(Change("sla.rules_changed", False, subject,
                                  f"{subject}: {'; '.join(rules)}", src))
    return changes


# --- plans ---------------------------------------------------------------------------------


def _reset(plan: Plan) -> str:
    return f"{plan.reset} ({plan.alignment})" if plan.reset else "none"


# (kind, label, value) for fields frozen once contracts use the plan.
_FROZEN: tuple[tuple[str, str, Callable[[Plan], Any]], ...] = (
    ("plan.type_changed", "type", lambda p: p.type),
    ("plan.unit_changed", "unit", lambda p: p.unit),
    ("plan.reset_changed", "reset", _reset),
    ("plan.sla_changed", "SLA", lambda p: p.sla_id),
)
_FREE: tuple[tuple[str, str, Callable[[Plan], Any]], ...] = (
    ("plan.limit_changed", "limit", lambda p: p.limit),
    ("plan.when_exhausted_changed", "when_exhausted", lambda p: p.when_exhausted),
    ("plan.thresholds_changed", "usage_percent alerts", lambda p: p.usage_thresholds),
    ("plan.thresholds_changed", "days_before_expiry alerts", lambda p: p.expiry_days),
    ("plan.discontinued_changed", "discontinued", lambda p: p.discontinued),
)


def _diff_plans(base: Policy, head: Policy) -> list[Change]:
    @cache
    def users() -> dict[str, list[str]]:
        """Head contracts per plan; only built when a plan changed shape or went away."""
        return _contracts_by_plan(head.contracts.values())

    @cache
    def surviving_users() -> dict[str, list[str]]:
        """Base contracts per plan, of those still in head; only built when a plan went away."""
        still_there = head.contracts.keys()
        return _contracts_by_plan(c for c in base.contracts.values() if c.id in still_there)

    def referenced_by(plan_id: str) -> tuple[str, int]:
        ids = {*users().get(plan_id, ()), *surviving_users().get(plan_id, ())}
        return _name_contracts(ids), len(ids)

    changes, common = _added_removed("plan", "plan", base.plans, head.plans, referenced_by)
    for id_ in common:
        old: Plan = base.plans[id_]
        new: Plan = head.plans[id_]
        subject, src = f"plan {id_}", new.source
        for kind, label, get in _FROZEN:
            a, b = get(old), get(new)
            if a == b:
                continue
            using = users().get(id_, [])
            text = f"{subject}: {label} {_show(a)} -> {_show(b)}"
            if using:
                verb = _agree(len(set(using)), "uses", "use")
                text += f", but {_name_contracts(using)} {verb} it"
                text += " (frozen once a plan has contracts)"
            else:
                text += " (no contract uses it)"
            changes.append(Change(kind, bool(using), subject, text, src))
        for kind, label, get in _FREE:
            a, b = get(old), get(new)
            if a != b:
                changes.append(Change(kind, False, subject,
                                      f"{subject}: {label} {_show(a)} -> {_show(b)}", src))
    return changes


# --- contracts -----------------------------------------------------------------------------

# (attribute, label) of contract fields that may change freely.
_CONTRACT_FIELDS: tuple[tuple[str, str], ...] = (
    ("customer", "customer"),
    ("start", "start"),
    ("end", "end"),
    ("tz", "timezone"),
    ("products", "products"),
    ("owner", "owner"),
    ("notify", "notify"),
    ("precedence", "precedence"),
    ("suspended", "suspended"),
    ("template_id", "template"),
)
_contract_key = attrgetter("plan_id", *(attr for attr, _ in _CONTRACT_FIELDS))


def _show_contract_field(attr: str, value: Any) -> str:
    return "all" if attr == "products" and value is None else _show(value)


def _diff_contracts(base: Policy, head: Policy) -> list[Change]:
    added = sorted(id_ for id_ in head.contracts if id_ not in base.contracts)
    removed, changed = [], []
    for id_, old in base.contracts.items():
        new = head.contracts.get(id_)
        if new is None:
            removed.append(id_)
        elif _contract_key(old) != _contract_key(new):
            changed.append(id_)
    changes = []
    for id_ in added:
        new = head.contracts[id_]
        subject = f"contract {id_}"
        plan = head.plans.get(new.plan_id)
        if plan is not None and plan.discontinued is True:
            changes.append(Change("contract.added_on_discontinued_plan", True, subject,
                                  f"{subject} added on plan {plan.id}, which is discontinued",
                                  new.source))
        else:
            changes.append(Change("contract.added", False, subject,
                                  f"{subject} added on plan {new.plan_id}", new.source))
    for id_ in sorted(removed):
        subject = f"contract {id_}"
        changes.append(Change("contract.removed", False, subject, f"{subject} removed",
                              base.contracts[id_].source))
    for id_ in sorted(changed):
        old, new = base.contracts[id_], head.contracts[id_]
        subject, src = f"contract {id_}", new.source
        if old.plan_id != new.plan_id:
            changes.append(Change(
                "contract.plan_changed", True, subject,
                f"{subject}: plan {old.plan_id} -> {new.plan_id}; a contract's plan is fixed: "
                "end this contract and start a new one instead", src))
        for attr, label in _CONTRACT_FIELDS:
            a, b = getattr(old, attr), getattr(new, attr)
            if a != b:
                text = (f"{subject}: {label} {_show_contract_field(attr, a)} -> "
                        f"{_show_contract_field(attr, b)}")
                changes.append(Change(f"contract.{label}_changed", False, subject, text, src))
    return changes
