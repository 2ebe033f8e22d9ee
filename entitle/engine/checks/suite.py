"""Semantic checks of test suites: the fixtures and contracts their tests name."""

from __future__ import annotations

from entitle.engine.diagnostics import Diagnostic
from entitle.engine.hints import (
    Meant,
    did_you_mean,
    suggestion,
)
from entitle.engine.load import Document


def mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def suite_references(doc: Document, contracts: frozenset[str] | None) -> list[Diagnostic]:
    """Fixture names (and contract ids) a suite's tests use, checked before `entitle test`."""
    fixtures = mapping(doc.data.get("fixtures"))
    usage, tickets = mapping(fixtures.get("usage")), mapping(fixtures.get("tickets"))
    out = []

    def named(pointer: tuple, name: object, section: str, known: dict) -> None:
        if isinstance(name, str) and name not in known:
            fix = did_you_mean(name, known) or f"; define it under fixtures.{section}"
            noun = section.removesuffix("s")
            out.append(doc.diagnostic(pointer, f"unknown {noun} fixture {name!r}{fix}"))

    lists = [(("fixtures", "usage", name), entries) for name, entries in usage.items()]
    for i, test in enumerate(doc.data.get("tests") or ()):
        test = mapping(test)
        ticket = test.get("ticket")
        named(("tests", i, "usage"), test.get("usage"), "usage", usage)
        named(("tests", i, "ticket"), ticket, "tickets", tickets)
        named(("tests", i, "ticket", "from"), mapping(ticket).get("from"), "tickets", tickets)
        lists.append((("tests", i, "usage"), test.get("usage")))
    for name, ticket in tickets.items():
        if "from" in mapping(ticket):
            out.append(doc.diagnostic(
                ("fixtures", "tickets", name, "from"), "a ticket fixture cannot start `from` "
                "another (only a test's ticket can); write its fields in full", key=True,
            ))
    if contracts is not None:
        own = {str(mapping(c).get("id")) for c in fixtures.get("contracts") or ()}
        out += _usage_contracts(doc, lists, contracts | own)
    return out


def _usage_contracts(doc: Document, lists: list[tuple[tuple, object]],
                     known: frozenset[str]) -> list[Diagnostic]:
    out = []
    closest: list[Meant] = []  # built on the first unknown id only: bundles are large
    for pointer, entries in lists:
        for j, entry in enumerate(entries if isinstance(entries, list) else ()):
            cid = mapping(entry).get("contract_id")
            if isinstance(cid, str) and cid not in known:
                closest = closest or [Meant(known)]
                out.append(doc.diagnostic((*pointer, j, "contract_id"),
                                          f"unknown contract {cid!r}{suggestion(closest[0](cid))}"))
    return out
