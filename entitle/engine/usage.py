"""Usage given as data (CLI --usage files, test suites): the ledger's read side without a store."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from entitle.engine.model import Policy
from entitle.engine.periods import local_midnight, period_at, period_key
from entitle.engine.ticket import TicketError, parse_instant


@dataclass(frozen=True)
class StaticUsage:
    """`by_period` counts one period; `by_contract` counts whatever period is asked for."""

    by_period: Mapping[tuple[str, str], float] = field(default_factory=dict)
    by_contract: Mapping[str, float] = field(default_factory=dict)

    def used(self, contract_id: str, period_key: str) -> float:
        return self.by_period.get((contract_id, period_key), self.by_contract.get(contract_id, 0.0))

    def used_many(self, keys: Sequence[tuple[str, str]]) -> list[float]:
        return [self.used(contract_id, key) for contract_id, key in keys]

    @classmethod
    def from_entries(cls, policy: Policy, entries: Iterable[object]) -> StaticUsage:
        """Entries are {contract_id, used, period_start?}; period_start is a date or an instant."""
        by_period: dict[tuple[str, str], float] = {}
        by_contract: dict[str, float] = {}
        for i, entry in enumerate(entries):
            where = f"usage[{i}]"
            if not isinstance(entry, Mapping):
                raise TicketError(where, "must be an object {contract_id, used, period_start?}")
            cid = entry.get("contract_id", entry.get("contract"))
            contract = policy.contracts.get(cid) if isinstance(cid, str) else None
            if contract is None:
                raise TicketError(f"{where}.contract_id", f"unknown contract {cid!r}")
            used = entry.get("used")
            number = isinstance(used, int | float) and not isinstance(used, bool)
            if not number or not math.isfinite(used):
                raise TicketError(f"{where}.used", "must be a finite number")
            if used < 0:
                raise TicketError(f"{where}.used", "must not be negative")
            start = entry.get("period_start")
            if start is None:
                by_contract[contract.id] = float(used)
                continue
            instant = _start_instant(f"{where}.period_start", start, contract.tz)
            plan = policy.plans[contract.plan_id]
            key = period_key(period_at(plan, contract, instant))
            by_period[(contract.id, key)] = by_period.get((contract.id, key), 0.0) + float(used)
        return cls(by_period, by_contract)


def _start_instant(where: str, value: object, tz: str) -> datetime:
    if isinstance(value, date) and not isinstance(value, datetime):
        return local_midnight(value, tz)
    if isinstance(value, str) and len(value) == 10:
        try:
            return local_midnight(date.fromisoformat(value), tz)
        except ValueError:
            raise TicketError(where, f"{value!r} is not a date (YYYY-MM-DD)") from None
    return parse_instant(where, value)
