"""Decision reasons not pinned by the example suites (policies/tests/*_test.yaml)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from entitle.engine.bundle import policy_from_documents
from entitle.engine.decide import CONTRACT_SUSPENDED, COVERED, REASONS, decide
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
