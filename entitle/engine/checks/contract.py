"""Semantic checks of Contracts: dates, discontinued plans, overlapping terms."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import date, timedelta
from typing import NamedTuple

from entitle.engine.diagnostics import Diagnostic
from entitle.engine.load import Document


def contract_dates(doc: Document, merged: dict, plans: dict[str, Document]) -> list[Diagnostic]:
    out = []
    try:
        start = date.fromisoformat(str(merged.get("start")))
    except ValueError:
        return [doc.diagnostic(("start",), f"{merged.get('start')!r} is not a date (YYYY-MM-DD)")]
    end_text = merged.get("end")
    if end_text is not None:
        try:
            end = date.fromisoformat(str(end_text))
        except ValueError:
            return [doc.diagnostic(("end",), f"{end_text!r} is not a date (YYYY-MM-DD)")]
        if end <= start:
            out.append(doc.diagnostic(
                ("end",), f"end {end} is not after start {start}; `end` is exclusive"
            ))
    plan = plans.get(merged.get("plan", ""))
    discontinued = plan.data.get("discontinued") if plan else None
    if isinstance(discontinued, str) and start >= date.fromisoformat(discontinued):
        out.append(doc.diagnostic(
            ("start",),
            f"plan {plan.data['id']!r} is discontinued since {discontinued}; a contract "
            "starting after that needs another plan",
        ))
    return out


class ContractSpan(NamedTuple):
    """What the overlap check needs of one contract (template fields merged in)."""

    id: str
    customer: str
    start: date
    end: date | None  # exclusive; None is open-ended
    products: frozenset[str] | None  # None covers every product
    precedence: int | None
    doc: Document | None = None


class Overlap(NamedTuple):
    later: ContractSpan
    earlier: ContractSpan
    product: str | None  # None: both cover every product


_ALL = object()  # bucket of every earlier contract, whatever its products


_ANY = object()  # bucket of every earlier contract, whatever its precedence


def contract_span(doc: Document, merged: dict) -> ContractSpan | None:
    """The span of a contract, or None when its dates are broken (reported elsewhere)."""
    try:
        start = date.fromisoformat(str(merged.get("start")))
        end = date.fromisoformat(str(merged["end"])) if merged.get("end") is not None else None
    except ValueError:
        return None
    if end is not None and end <= start:
        return None
    products = merged.get("products")
    covered = None if products is None or "*" in products else frozenset(map(str, products))
    return ContractSpan(str(merged.get("id")), str(merged.get("customer")), start, end, covered,
                        merged.get("precedence"), doc)


def contract_overlaps(spans: Iterable[ContractSpan]) -> list[Overlap]:
    """Each contract that conflicts with an earlier one (by start, then id), with one partner.

    A sweep per customer in start order: every earlier contract goes into buckets keyed by
    (product or "*" or _ALL, precedence or _ANY), each a heap with the latest end on top; the
    top is still running iff any in the bucket is. O(n log n) plus products per contract.
    """
    by_customer: dict[str, list[ContractSpan]] = {}
    for span in spans:
        by_customer.setdefault(span.customer, []).append(span)
    out = []
    for customer in sorted(by_customer):
        buckets: dict[tuple[object, object], list[tuple[float, date, str, int]]] = {}
        ordered = sorted(by_customer[customer], key=lambda s: (s.start, s.id))
        for index, span in enumerate(ordered):
            day = span.start.toordinal()
            keys = [_ANY] if span.precedence is None else [None, span.precedence]
            scopes: list[object] = [_ALL]
            if span.products is not None:
                scopes = [*sorted(span.products), "*"]
            found: list[tuple[date, str, int, object]] = []
            for scope in scopes:
                for key in keys:
                    heap = buckets.get((scope, key))
                    if heap and -heap[0][0] > day:
                        _, start, ident, other = heap[0]
                        found.append((start, ident, other, scope))
            if found:
                _, _, other, scope = min(found, key=lambda f: (f[0], f[1]))
                earlier = ordered[other]  # type: ignore[index]
                if scope is _ALL:  # this one covers every product: name one of the other's
                    product = min(earlier.products) if earlier.products is not None else None
                elif scope == "*":  # the other covers every product
                    product = min(span.products)  # type: ignore[arg-type]
                else:
                    product = str(scope)
                out.append(Overlap(span, earlier, product))
            end = float(span.end.toordinal()) if span.end is not None else float("inf")
            entry = (-end, span.start, span.id, index)
            places = [_ALL, *(sorted(span.products) if span.products is not None else ["*"])]
            for scope in places:
                for key in (span.precedence, _ANY):
                    heapq.heappush(buckets.setdefault((scope, key), []), entry)
    return out


def overlap_diagnostics(spans: list[ContractSpan]) -> list[Diagnostic]:
    out = []
    for later, earlier, product in contract_overlaps(spans):
        doc, other = later.doc, earlier.doc
        if doc is None:
            continue
        where = f" ({other.path}:{other.locate(('id',))[0]})" if other is not None else ""
        ends = [e for e in (later.end, earlier.end) if e is not None]
        until = f"to {min(ends) - timedelta(days=1)}" if ends else "on, with no end"
        on = f"on product {product!r}" if product is not None else "on every product"
        own = doc.data.get("products")
        if isinstance(own, list) and product in own:
            pointer: tuple = ("products", own.index(product))
        elif isinstance(own, list):
            pointer = ("products",)
        else:
            pointer = ("start",)
        out.append(doc.diagnostic(
            pointer,
            f"contract {later.id!r} overlaps {earlier.id!r}{where} {on} from {later.start} "
            f"{until}; give both a different `precedence` or make the dates not overlap",
        ))
    return out
