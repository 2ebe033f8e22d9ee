"""An immutable compiled policy plus its rulesets: what every decision is evaluated against."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from entitle.engine.bundle import compile_or_raise
from entitle.engine.clocks import ClockTerms, terms_for
from entitle.engine.model import Policy
from entitle.engine.rules import RuleSet


@dataclass(frozen=True)
class Snapshot:
    policy: Policy
    rules: RuleSet
    _terms: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, policy: Policy, *, cache_size: int = 10000) -> Snapshot:
        return cls(policy, RuleSet.compile(policy.revision, policy.slas, cache_size=cache_size))

    @classmethod
    def load(cls, root: Path, *, cache_size: int = 10000) -> Snapshot:
        """Load, validate and compile a bundle; raises PolicyError with every diagnostic."""
        return cls.build(compile_or_raise(root), cache_size=cache_size)

    def clock_terms(self, sla_id: str, rule_index: int | None) -> ClockTerms:
        """The clock terms of tickets SLA `sla_id`'s rule `rule_index` (None: no rule)
        matched; built once per snapshot."""
        key = (sla_id, rule_index)
        terms = self._terms.get(key)
        if terms is None:
            sla = self.policy.slas[sla_id]
            rule = sla.rules[rule_index] if rule_index is not None else None
            terms = self._terms[key] = terms_for(self.policy, sla, rule)
        return terms

    def close(self) -> None:
        """Free the rulesets once no request uses this snapshot any more."""
        self.rules.close()
