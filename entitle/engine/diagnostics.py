"""Findings about a bundle, located at the YAML that caused them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Diagnostic:
    path: str
    line: int
    col: int
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else "warning: "
        return f"{self.path}:{self.line}:{self.col}: {tag}{self.message}"

    def to_json(self) -> dict:
        return asdict(self)


class PolicyError(Exception):
    """Raised when a bundle cannot be compiled; carries every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.severity == "error"]
        super().__init__("\n".join(str(d) for d in errors) or "invalid policy bundle")
