"""Decision reasons not pinned by the example suites (policies/tests/*_test.yaml)."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from entitle.engine.bundle import policy_from_documents
from entitle.engine.decide import CONTRACT_SUSPENDED, COVERED, REASONS, decide, usage_keys
from entitle.engine.load import load_bundle_files, load_text
from entitle.engine.snapshot import Snapshot
from entitle.engine.ticket import ticket_from_json
from entitle.engine.usage import StaticUsage

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
NOW = datetime(2026, 6, 10, 13, 0, tzinfo=UTC)

SUSPENDED = """\
kind: Contract
id: hooli-backup
customer: hooli
plan: backup-unlimited
products: [backup]
start: 2026-01-01
suspended: true
---
kind: Contract
id: hooli-security
customer: hooli
plan: security-12-yearly
products: [security]
start: 2026-01-01
"""


def _decide(extra: str, **ticket):
    documents, diagnostics, _ = load_bundle_files(POLICIES)
    docs, more = load_text(extra, "extra.yaml")
    assert not diagnostics and not more
    policy, diagnostics = policy_from_documents(documents + docs)
    assert policy is not None, diagnostics
    snapshot = Snapshot.build(policy)
    try:
        body = {"ticket_id": "T-1", "priority": "low", "created_at": "2026-06-10T13:00:00Z",
                **ticket}
        return decide(snapshot, StaticUsage(), ticket_from_json(body), NOW)
    finally:
        snapshot.close()


def test_suspended_contract_yields_contract_suspended():
    decision = _decide(SUSPENDED, customer_id="hooli", product="backup")
    assert not decision.covered
    assert decision.reason == CONTRACT_SUSPENDED
    assert decision.contract_id == "hooli-backup"
    assert decision.plan_id == "backup-unlimited"
    assert decision.sla_id is None and not decision.targets
    assert "suspended" in decision.explanation


def test_suspension_is_per_contract():
    decision = _decide(SUSPENDED, customer_id="hooli", product="security")
    assert decision.reason == COVERED and decision.contract_id == "hooli-security"


def test_every_reason_is_expected_by_some_test():
    """Each reason is pinned by an example suite or by this file; a new reason needs one."""
    suites = "".join(p.read_text() for p in (POLICIES / "tests").glob("*_test.yaml"))
    expected = set(re.findall(r"\breason: ([A-Z_]+)", suites)) | {CONTRACT_SUSPENDED, COVERED}
    assert set(REASONS) <= expected, sorted(set(REASONS) - expected)


class _Recording:
    """Every contract at the same usage; remembers which (contract, period) keys were read."""

    def __init__(self, used: float):
        self.value, self.read = used, []

    def used(self, contract_id, period_key):
        self.read.append((contract_id, period_key))
        return self.value

    def used_many(self, keys):
        self.read.extend(keys)
        return [self.value] * len(keys)


@settings(max_examples=60, deadline=None)
@given(
    customer=st.sampled_from(["acme", "globex", "initech", "umbrella", "tailspin", "nobody"]),
    product=st.sampled_from(["backup", "security", "mail", "analytics", "sync", "vpn"]),
    days=st.integers(min_value=-400, max_value=700),
    used=st.floats(min_value=0, max_value=200),
)
def test_usage_keys_are_exactly_what_a_decision_reads(customer, product, days, used):
    """An admission reads its usage ahead with usage_keys(): it must be what decide() asks."""
    snapshot = _example_snapshot()
    ticket = ticket_from_json({
        "ticket_id": "T-keys", "customer_id": customer, "product": product, "priority": "high",
        "created_at": (NOW + timedelta(days=days, hours=days % 24)).isoformat(),
    })
    usage = _Recording(used)
    decide(snapshot, usage, ticket, NOW + timedelta(days=max(days, 0)))
    assert usage_keys(snapshot, ticket) == usage.read


@functools.cache
def _example_snapshot() -> Snapshot:
    documents, _, _ = load_bundle_files(POLICIES)
    policy, _ = policy_from_documents(documents)
    return Snapshot.build(policy)
