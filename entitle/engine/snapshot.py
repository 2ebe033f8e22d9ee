"""An immutable compiled policy plus its rulesets: what every decision is evaluated against."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from entitle.engine.bundle import compile_or_raise
from entitle.engine.model import Policy
from entitle.engine.rules import RuleSet


@dataclass(frozen=True)
class Snapshot:
    policy: Policy
    rules: RuleSet

    @classmethod
    def build(cls, policy: Policy, *, cache_size: int = 10000) -> Snapshot:
        return cls(policy, RuleSet.compile(policy.revision, policy.slas, cache_size=cache_size))

    @classmethod
    def load(cls, root: Path, *, cache_size: int = 10000) -> Snapshot:
        """Load, validate and compile a bundle; raises PolicyError with every diagnostic."""
        return cls.build(compile_or_raise(root), cache_size=cache_size)

    def close(self) -> None:
        """Free the rulesets once no request uses this snapshot any more."""
        self.rules.close()
