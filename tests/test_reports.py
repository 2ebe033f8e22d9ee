"""`entitle report` on the example bundle with a store holding some usage: text, CSV, JSON."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from entitle.cli import main
from entitle.engine import reports
from entitle.engine.bundle import compile_or_raise
from entitle.engine.periods import period_at, period_key
from entitle.engine.usage import StaticUsage
from entitle.server.store import StoreError, open_store
from entitle.server.store.migrations import LATEST

POLICIES = Path(__file__).resolve().parent.parent / "policies"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
USAGE = {"acme-security": 6.0, "globex-premium-2026": 5.0, "northwind-hours": 12.5}


@pytest.fixture
def store_with_usage(store_url):
    """The store at `store_url` holding USAGE in each contract's period containing NOW."""
    policy = compile_or_raise(POLICIES)
    store = open_store(store_url)
    try:
        for contract_id, amount in USAGE.items():
            contract = policy.contracts[contract_id]
            plan = policy.plans[contract.plan_id]
            store.record(
                f"k-{contract_id}", ticket_id=f"T-{contract_id}", contract_id=contract_id,
                period_key=period_key(period_at(plan, contract, NOW)), amount=amount,
                unit=plan.unit, at=NOW - timedelta(hours=1),
            )
    finally:
        store.close()
    return store_url


def report(capsys, store_url, *args) -> str:
    argv = ["report", *args, "--policies", str(POLICIES), "--store", store_url,
            "--now", NOW.isoformat()]
    assert main(argv) == 0
    return capsys.readouterr().out


def test_usage_report(capsys, store_with_usage):
    text = report(capsys, store_with_usage, "usage")
    lines = text.splitlines()
    assert lines[0].split() == [
        "CUSTOMER", "CONTRACT", "PLAN", "STATE", "PERIOD", "UNIT", "USED", "LIMIT", "REMAINING",
        "QUOTA", "USED",
    ]
    acme = next(line for line in lines if "acme-security" in line)
    assert acme.split()[-4:] == ["6", "12", "6", "50%"]
    hours = next(line for line in lines if "northwind-hours" in line)
    assert hours.split()[-4:] == ["12.5", "50", "37.5", "25%"]
    unlimited = next(line for line in lines if "acme-backup" in line)
    assert unlimited.split()[-3:] == ["-", "-", "-"]
    assert "█" not in text  # not a terminal

    rows = list(csv.DictReader(io.StringIO(report(capsys, store_with_usage, "usage", "--csv"))))
    by_id = {r["contract"]: r for r in rows}
    assert by_id["globex-premium-2026"]["quota_used"] == "25.0"
    assert by_id["acme-backup"]["limit"] == ""
    assert "globex-legacy-onsite" not in by_id  # expired: not in its term

    doc = json.loads(report(capsys, store_with_usage, "usage", "--json", "--customer", "acme"))
    assert doc["report"] == "usage" and doc["as_of"] == "2026-11-01T00:00:00Z"
    assert doc["customer"] == "acme"
    assert [(r["contract"], r["used"], r["quota_used"]) for r in doc["rows"]] == [
        ("acme-backup", 0.0, None), ("acme-security", 6.0, 50.0),
    ]


def test_renewals_report(capsys, store_with_usage):
    text = report(capsys, store_with_usage, "renewals", "--within", "90d")
    lines = text.splitlines()
    assert [line.split()[0] for line in lines[1:]] == [
        "acme-backup", "globex-premium-2026", "contoso-maintenance", "tailspin-weekly",
    ]
    globex = next(line for line in lines if line.startswith("globex-premium-2026"))
    assert globex.split()[-3:] == ["61", "25%", "globex-premium-2027"]

    rows = list(csv.DictReader(io.StringIO(
        report(capsys, store_with_usage, "renewals", "--within", "62d", "--csv")
    )))
    assert [r["contract"] for r in rows] == ["acme-backup", "globex-premium-2026",
                                             "contoso-maintenance"]
    assert rows[1]["renewed_by"] == "globex-premium-2027" and rows[0]["renewed_by"] == ""

    doc = json.loads(report(capsys, store_with_usage, "renewals", "--within", "30d", "--json"))
    assert doc == {"report": "renewals", "as_of": "2026-11-01T00:00:00Z", "within_days": 30.0,
                   "rows": []}
    assert "no renewals" in report(capsys, store_with_usage, "renewals", "--within", "1d")


def test_contracts_report(capsys, store_with_usage):
    text = report(capsys, store_with_usage, "contracts", "--by", "product")
    security = next(line for line in text.splitlines() if line.startswith("security"))
    # acme-security at 50%, globex-premium-2026 at 25%; globex-premium-2027 is planned.
    assert security.split()[1:8] == ["3", "2", "1", "0", "0", "38%", "acme-security"]

    rows = list(csv.DictReader(io.StringIO(
        report(capsys, store_with_usage, "contracts", "--by", "plan", "--csv")
    )))
    premium = next(r for r in rows if r["plan"] == "premium-monthly")
    assert (premium["contracts"], premium["active"], premium["planned"]) == ("2", "1", "1")
    assert premium["quota_used"] == "25.0"

    doc = json.loads(report(capsys, store_with_usage, "contracts", "--by", "owner", "--json"))
    owners = {r["owner"]: r for r in doc["rows"]}
    assert owners["emea-desk@support.example"]["contract_ids"] == (
        "acme-backup acme-security initech-basic"
    )
    assert owners["-"]["expired"] == 1


def test_bars_for_terminals():
    assert reports.bar(50) == "████░░░░"
    assert reports.bar(0) == "░░░░░░░░" and reports.bar(250) == "████████"
    policy = compile_or_raise(POLICIES)
    usage = StaticUsage(by_contract={"acme-security": 6})
    text = reports.render_text(
        reports.usage_report(policy, usage, NOW, "acme"), bars=True
    )
    assert "████░░░░  50%" in text


def test_bad_arguments_exit_2(capsys, tmp_path):
    store = f"sqlite:///{tmp_path / 'e.db'}"
    base = ["--policies", str(POLICIES), "--store", store]
    assert main(["report", "renewals", "--within", "soon", *base]) == 2
    assert main(["report", "usage", "--customer", "nobody", *base]) == 2
    assert main(["report", "usage", "--now", "yesterday", *base]) == 2
    assert main(["report", "usage", "--policies", str(tmp_path), "--store", store]) == 2
    assert "entitle report:" in capsys.readouterr().err


def run_report(capsys, store_url: str) -> tuple[int, str]:
    code = main(["report", "usage", "--policies", str(POLICIES), "--store", store_url,
                 "--now", NOW.isoformat()])
    return code, capsys.readouterr().err


def test_a_missing_sqlite_file_is_refused_and_not_created(capsys, tmp_path):
    typo = tmp_path / "typo.db"
    code, err = run_report(capsys, f"sqlite:///{typo}")
    assert code == 2 and "does not exist" in err and "--store" in err
    assert not typo.exists() and list(tmp_path.iterdir()) == []


def test_a_store_without_a_ledger_is_refused_and_left_unmigrated(capsys, store_url):
    if store_url.startswith("sqlite:///"):
        Path(store_url.removeprefix("sqlite:///")).touch()  # an empty database file
    code, err = run_report(capsys, store_url)
    assert code == 2 and "no entitle ledger" in err
    with pytest.raises(StoreError, match="no entitle ledger"):  # still nothing was created
        open_store(store_url, migrate=False)


def _set_schema_version(store_url: str, version: int) -> None:
    """Make the migrated store at `store_url` claim schema `version` instead of LATEST."""
    store = open_store(store_url)
    try:
        store._run(lambda tx: tx.run("DELETE FROM schema_migrations WHERE version = ?",
                                     (LATEST,)))
        if version > LATEST:
            store._run(lambda tx: tx.run(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, "from the future", "2030-01-01T00:00:00Z"),
            ))
    finally:
        store.close()


@pytest.mark.parametrize("offset, says", [(-1, "older"), (1, "newer")])
def test_a_store_at_another_schema_version_is_refused(capsys, store_url, offset, says):
    _set_schema_version(store_url, LATEST + offset)
    code, err = run_report(capsys, store_url)
    assert code == 2 and says in err
    with pytest.raises(StoreError, match=says):  # the report migrated nothing
        open_store(store_url, migrate=False)


def test_a_current_store_opens_read_only(store_with_usage):
    store = open_store(store_with_usage, migrate=False)
    try:
        assert store.installed_version() == LATEST
        assert store.usage_of("acme-security")  # the recorded usage is readable
    finally:
        store.close()


def test_renewed_by_names_only_a_contract_taking_over_at_the_end():
    policy = compile_or_raise(POLICIES)
    doc = reports.renewals(policy, StaticUsage(), NOW, timedelta(days=120))
    renewed = {r["contract"]: r["renewed_by"] for r in doc.rows}
    assert renewed["globex-premium-2026"] == "globex-premium-2027"  # starts at its end
    # initech-basic (all products) ends a day later but has run alongside it since February
    assert renewed["initech-licensed"] is None
    assert renewed["initech-basic"] is None


def test_what_counts_as_a_renewal():
    policy = compile_or_raise(POLICIES)
    old = policy.contracts["globex-premium-2026"]
    new = policy.contracts["globex-premium-2027"]

    def renews(**changes) -> bool:
        return reports._renewal_of(old, [dataclasses.replace(new, **changes)]) == new.id

    assert renews()
    assert renews(start_at=old.end_at - timedelta(days=3))  # signed to overlap a few days
    assert renews(products=None)  # covers more: every product
    assert not renews(start_at=old.end_at - timedelta(days=30))  # runs alongside it
    assert not renews(customer="initech")
    assert not renews(products=frozenset(sorted(old.products)[:1]))  # drops a product
    assert not renews(end_at=old.end_at)  # does not outlast it
    assert renews(end_at=None)  # open-ended
