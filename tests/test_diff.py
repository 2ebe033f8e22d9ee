"""`entitle diff`: what counts as breaking between two policies, and the git-backed command."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from entitle.cli import main
from entitle.engine.diff import Change, diff_policies
from entitle.engine.model import (
    Calendar,
    Contract,
    Plan,
    Policy,
    Sla,
    SlaRule,
    Source,
    TargetSpec,
    frozen_map,
)
from entitle.engine.model import Condition as When

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "policies"

# --- hand-built policies -------------------------------------------------------------------

NINE_TO_FIVE = ((540, 1020),)
WEEK = (NINE_TO_FIVE,) * 5 + ((), ())


def src(path: str, line: int = 1) -> Source:
    return Source(path, line, 1)


def calendar(id_: str = "berlin", **kw) -> Calendar:
    fields = {"id": id_, "tz": "Europe/Berlin", "week": WEEK, "source": src("calendars.yaml")}
    return Calendar(**{**fields, **kw})


def targets(minutes: float = 180, calendar_id: str | None = "berlin") -> dict:
    clock = "business" if calendar_id else "calendar"
    return {"high": (TargetSpec("first_response", 60, clock, calendar_id),
                     TargetSpec("resolution", minutes, clock, calendar_id))}


def sla(id_: str = "premium", **kw) -> Sla:
    fields = {"id": id_, "calendar_id": "berlin", "rules": (),
              "default": frozen_map(targets()), "source": src("slas.yaml", 3)}
    return Sla(**{**fields, **kw})


def plan(id_: str = "premium-monthly", **kw) -> Plan:
    fields = {"id": id_, "type": "per_period", "unit": "incidents", "limit": 20.0,
              "reset": "monthly", "alignment": "calendar", "when_exhausted": "reject",
              "sla_id": "premium", "usage_thresholds": (80, 100), "expiry_days": (30,),
              "source": src("plans.yaml", 10)}
    return Plan(**{**fields, **kw})


def contract(id_: str = "acme-2026", **kw) -> Contract:
    fields = {"id": id_, "customer": "acme", "plan_id": "premium-monthly",
              "products": frozenset({"backup"}), "start": date(2026, 1, 1),
              "end": date(2027, 1, 1), "tz": "UTC",
              "start_at": datetime(2026, 1, 1, tzinfo=UTC),
              "end_at": datetime(2027, 1, 1, tzinfo=UTC),
              "source": src("contracts.yaml", 20)}
    return Contract(**{**fields, **kw})


def policy(calendars=(), slas=(), plans=(), contracts=()) -> Policy:
    by_customer: dict[str, tuple[Contract, ...]] = {}
    for c in contracts:
        by_customer[c.customer] = (*by_customer.get(c.customer, ()), c)
    return Policy(
        revision="test",
        calendars=frozen_map({c.id: c for c in calendars}),
        slas=frozen_map({s.id: s for s in slas}),
        plans=frozen_map({p.id: p for p in plans}),
        contracts=frozen_map({c.id: c for c in contracts}),
        by_customer=frozen_map(by_customer),
    )


def world(*, cal=None, sla_=None, plans=None, contracts=None) -> Policy:
    """The base world: one calendar, SLA, plan and contract; override any part."""
    return policy(
        [calendar()] if cal is None else cal,
        [sla()] if sla_ is None else sla_,
        [plan()] if plans is None else plans,
        [contract()] if contracts is None else contracts,
    )


def only(changes: list[Change]) -> Change:
    assert len(changes) == 1, [str(c) for c in changes]
    return changes[0]


# --- nothing changed -----------------------------------------------------------------------


def test_identical_policies_have_no_changes():
    assert diff_policies(world(), world()) == []


def test_moved_declarations_are_not_changes():
    moved = world(plans=[plan(source=src("elsewhere.yaml", 99))],
                  contracts=[contract(source=src("other.yaml", 5))])
    assert diff_policies(world(), moved) == []


# --- breaking: frozen plan fields while contracts use the plan -----------------------------


@pytest.mark.parametrize(
    ("edit", "kind", "fragment"),
    [
        ({"type": "pack", "reset": None}, "plan.type_changed", "type per_period -> pack"),
        ({"unit": "hours"}, "plan.unit_changed", "unit incidents -> hours"),
        ({"reset": "quarterly"}, "plan.reset_changed",
         "reset monthly (calendar) -> quarterly (calendar)"),
        ({"alignment": "anniversary"}, "plan.reset_changed",
         "reset monthly (calendar) -> monthly (anniversary)"),
        ({"sla_id": "basic"}, "plan.sla_changed", "SLA premium -> basic"),
    ],
)
def test_frozen_plan_field_change_is_breaking_while_a_contract_uses_it(edit, kind, fragment):
    head = world(sla_=[sla(), sla("basic")], plans=[plan(**edit)])
    base = world(sla_=[sla(), sla("basic")])
    changes = [c for c in diff_policies(base, head) if c.kind == kind]
    change = only(changes)
    assert change.breaking
    assert change.subject == "plan premium-monthly"
    assert fragment in change.message
    assert "contract acme-2026" in change.message
    assert change.source == src("plans.yaml", 10)


@pytest.mark.parametrize(
    "edit",
    [{"type": "pack", "reset": None}, {"unit": "hours"}, {"reset": "yearly"},
     {"alignment": "anniversary"}, {"sla_id": "basic"}],
)
def test_frozen_plan_field_change_is_fine_without_contracts(edit):
    base = world(sla_=[sla(), sla("basic")], contracts=[])
    head = world(sla_=[sla(), sla("basic")], plans=[plan(**edit)], contracts=[])
    changes = diff_policies(base, head)
    assert changes and not any(c.breaking for c in changes)
    assert all("no contract uses it" in c.message for c in changes)


def test_only_contracts_in_head_freeze_a_plan():
    base = world()
    head = world(plans=[plan(reset="weekly")], contracts=[])
    changes = diff_policies(base, head)
    assert {c.kind: c.breaking for c in changes} == {
        "plan.reset_changed": False, "contract.removed": False,
    }


def test_alignment_of_a_plan_without_reset_is_not_a_reset_change():
    base = world(plans=[plan(type="pack", reset=None)])
    head = world(plans=[plan(type="pack", reset=None, alignment="anniversary")])
    assert diff_policies(base, head) == []


def test_breaking_message_names_at_most_five_contracts():
    many = [contract(f"acme-{i:02d}") for i in range(8)]
    change = only(diff_policies(world(contracts=many),
                                world(plans=[plan(unit="days")], contracts=many)))
    assert "contracts acme-00, acme-01, acme-02, acme-03, acme-04 and 3 more use it" in (
        change.message
    )


def test_the_verb_agrees_with_how_many_contracts_use_the_plan():
    one = only(diff_policies(world(), world(plans=[plan(unit="days")])))
    assert "but contract acme-2026 uses it (frozen" in one.message
    two = [contract("acme-a"), contract("acme-b")]
    both = only(diff_policies(world(contracts=two),
                              world(plans=[plan(unit="days")], contracts=two)))
    assert "but contracts acme-a, acme-b use it (frozen" in both.message


def test_the_verb_agrees_with_how_many_still_reference_a_removal():
    one = only(diff_policies(world(cal=[calendar(), calendar("tokyo")]),
                             world(cal=[calendar("tokyo")])))
    assert "calendar berlin removed but SLA premium still references it" in one.message
    slas = [sla(), sla("gold")]
    two = only(diff_policies(world(cal=[calendar(), calendar("tokyo")], sla_=slas),
                             world(cal=[calendar("tokyo")], sla_=slas)))
    assert "calendar berlin removed but SLA gold, SLA premium still reference it" in two.message


# --- breaking: removals while referenced ---------------------------------------------------


def test_plan_removed_while_a_surviving_contract_referenced_it():
    base = world(plans=[plan(), plan("basic-monthly")])
    head = world(plans=[plan("basic-monthly")],
                 contracts=[contract(plan_id="basic-monthly")])
    changes = {c.kind: c for c in diff_policies(base, head)}
    assert set(changes) == {"plan.removed", "contract.plan_changed"}
    removed = changes["plan.removed"]
    assert removed.breaking
    assert "plan premium-monthly removed but contract acme-2026 still references it" in (
        removed.message
    )
    assert removed.source == src("plans.yaml", 10)  # where it was, in base


def test_plan_removed_with_its_contracts_is_not_breaking():
    base = world(plans=[plan(), plan("basic-monthly", source=src("old.yaml", 4))])
    head = world()
    change = only(diff_policies(base, head))
    assert change.kind == "plan.removed" and not change.breaking
    assert change.source == src("old.yaml", 4)


def test_plan_removed_while_head_contracts_use_it_is_breaking():
    # An invalid head (dangling reference) still diffs sensibly.
    head = world(plans=[])
    change = only(diff_policies(world(), head))
    assert change.breaking and change.kind == "plan.removed"


def test_sla_removed_while_a_plan_references_it_is_breaking():
    base = world(sla_=[sla(), sla("gold")])
    head = world(sla_=[sla("gold")])
    change = only(diff_policies(base, head))
    assert change.kind == "sla.removed" and change.breaking
    assert "plan premium-monthly" in change.message


def test_unreferenced_sla_removal_is_fine():
    base = world(sla_=[sla(), sla("gold", source=src("gold.yaml", 2))])
    change = only(diff_policies(base, world()))
    assert (change.kind, change.breaking, change.source) == (
        "sla.removed", False, src("gold.yaml", 2))


def test_calendar_removed_while_an_sla_uses_it_is_breaking():
    base = world(cal=[calendar(), calendar("tokyo")])
    head = world(cal=[calendar("tokyo")])
    change = only(diff_policies(base, head))
    assert change.kind == "calendar.removed" and change.breaking
    assert "SLA premium" in change.message


def test_calendar_used_only_by_a_rule_target_counts_as_referenced():
    rule = SlaRule("outage", When(subject_keywords=("outage",)),
                   frozen_map(targets(60, "tokyo")))
    base = world(cal=[calendar(), calendar("tokyo")], sla_=[sla(rules=(rule,))])
    head = world(cal=[calendar()], sla_=[sla(rules=(rule,))])
    assert only(diff_policies(base, head)).breaking


def test_unreferenced_calendar_removal_is_fine():
    base = world(cal=[calendar(), calendar("tokyo")])
    change = only(diff_policies(base, world()))
    assert change.kind == "calendar.removed" and not change.breaking


# --- breaking: contracts -------------------------------------------------------------------


def test_contract_plan_change_is_breaking():
    base = world(plans=[plan(), plan("basic-monthly")])
    head = world(plans=[plan(), plan("basic-monthly")],
                 contracts=[contract(plan_id="basic-monthly")])
    change = only(diff_policies(base, head))
    assert change.kind == "contract.plan_changed" and change.breaking
    assert "plan premium-monthly -> basic-monthly" in change.message
    assert change.source == src("contracts.yaml", 20)


def test_contract_added_on_a_discontinued_plan_is_breaking():
    legacy = plan("legacy", discontinued=True)
    base = world(plans=[plan(), legacy])
    head = world(plans=[plan(), legacy],
                 contracts=[contract(), contract("initech-1", plan_id="legacy")])
    change = only(diff_policies(base, head))
    assert change.kind == "contract.added_on_discontinued_plan" and change.breaking
    assert "plan legacy" in change.message and "discontinued" in change.message


def test_existing_contract_on_a_newly_discontinued_plan_is_fine():
    change = only(diff_policies(world(), world(plans=[plan(discontinued=True)])))
    assert change.kind == "plan.discontinued_changed" and not change.breaking


def test_contract_added_on_a_plan_discontinued_at_a_date_is_left_to_validate():
    dated = plan("legacy", discontinued=date(2027, 1, 1))
    head = world(plans=[plan(), dated],
                 contracts=[contract(), contract("initech-1", plan_id="legacy")])
    change = only(diff_policies(world(plans=[plan(), dated]), head))
    assert change.kind == "contract.added" and not change.breaking


# --- non-breaking, listed ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "kind", "fragment"),
    [
        ({"limit": 25.0}, "plan.limit_changed", "limit 20 -> 25"),
        ({"usage_thresholds": (50, 80, 100)}, "plan.thresholds_changed",
         "usage_percent alerts [80, 100] -> [50, 80, 100]"),
        ({"expiry_days": (90, 30)}, "plan.thresholds_changed",
         "days_before_expiry alerts [30] -> [90, 30]"),
        ({"when_exhausted": "overage"}, "plan.when_exhausted_changed", "reject -> overage"),
        ({"discontinued": date(2027, 1, 1)}, "plan.discontinued_changed", "none -> 2027-01-01"),
    ],
)
def test_free_plan_fields_are_not_breaking(edit, kind, fragment):
    change = only(diff_policies(world(), world(plans=[plan(**edit)])))
    assert (change.kind, change.breaking) == (kind, False)
    assert fragment in change.message


def test_sla_target_change_is_not_breaking_and_says_what_moved():
    head = world(sla_=[sla(default=frozen_map(targets(120)))])
    change = only(diff_policies(world(), head))
    assert (change.kind, change.breaking) == ("sla.targets_changed", False)
    assert "high resolution 3h business on berlin -> 2h business on berlin" in change.message


def test_sla_rule_changes_are_listed():
    a = SlaRule("outage", When(subject_keywords=("outage",)), frozen_map(targets(60)))
    b = SlaRule("big", When(products=frozenset({"backup"})), frozen_map(targets(240)))
    base = world(sla_=[sla(rules=(a, b))])
    head = world(sla_=[sla(rules=(b, replace(a, targets=frozen_map(targets(30)))))])
    change = only(diff_policies(base, head))
    assert (change.kind, change.breaking) == ("sla.rules_changed", False)
    assert "rule 'outage' changed (high resolution 1h business on berlin -> 30m" in (
        change.message
    )
    assert "rules reordered: big, outage" in change.message


def test_sla_calendar_change_is_not_breaking():
    head = world(cal=[calendar(), calendar("tokyo")], sla_=[sla(calendar_id="tokyo")])
    kinds = {c.kind: c.breaking for c in diff_policies(world(cal=[calendar(), calendar("tokyo")]),
                                                       head)}
    assert kinds == {"sla.calendar_changed": False}


def test_calendar_hours_holidays_and_zone_are_not_breaking():
    week = ((540, 720), (780, 1020)), *WEEK[1:]
    head = world(cal=[calendar(tz="Europe/Vienna", week=week,
                               holidays=frozenset({date(2026, 12, 24)}),
                               yearly_holidays=frozenset({(12, 25)}))])
    changes = diff_policies(world(), head)
    assert [(c.kind, c.breaking) for c in changes] == [
        ("calendar.timezone_changed", False),
        ("calendar.hours_changed", False),
        ("calendar.holidays_changed", False),
    ]
    assert "mon 09:00-17:00 -> 09:00-12:00, 13:00-17:00" in changes[1].message
    assert "+2026-12-24 +yearly 12-25" in changes[2].message


@pytest.mark.parametrize(
    ("edit", "kind", "fragment"),
    [
        ({"end": None}, "contract.end_changed", "end 2027-01-01 -> none"),
        ({"products": None}, "contract.products_changed", "products [backup] -> all"),
        ({"notify": ("desk@acme.example",)}, "contract.notify_changed",
         "notify [] -> [desk@acme.example]"),
        ({"owner": "csm@support.example"}, "contract.owner_changed", "owner none -> csm@"),
        ({"start": date(2026, 2, 1)}, "contract.start_changed", "start 2026-01-01 -> 2026-02-01"),
        ({"suspended": True}, "contract.suspended_changed", "suspended false -> true"),
    ],
)
def test_contract_field_changes_are_not_breaking(edit, kind, fragment):
    change = only(diff_policies(world(), world(contracts=[contract(**edit)])))
    assert (change.kind, change.breaking) == (kind, False)
    assert fragment in change.message


def test_additions_are_not_breaking_and_come_in_a_stable_order():
    base = policy()
    head = world(contracts=[contract("b-2"), contract("a-1")])
    changes = diff_policies(base, head)
    assert [(c.kind, c.subject) for c in changes] == [
        ("calendar.added", "calendar berlin"),
        ("sla.added", "SLA premium"),
        ("plan.added", "plan premium-monthly"),
        ("contract.added", "contract a-1"),
        ("contract.added", "contract b-2"),
    ]
    assert not any(c.breaking for c in changes)
    assert diff_policies(base, head) == changes


def test_change_renders_as_a_located_line():
    change = Change("plan.limit_changed", False, "plan p", "plan p: limit 1 -> 2", src("p.yaml", 4))
    assert str(change) == "ok p.yaml:4:1: plan p: limit 1 -> 2"
    assert str(replace(change, breaking=True)).startswith("BREAKING p.yaml:4:1: ")
    assert change.to_json() == {
        "kind": "plan.limit_changed", "breaking": False, "subject": "plan p",
        "message": "plan p: limit 1 -> 2", "path": "p.yaml", "line": 4, "col": 1,
    }


# --- the command, on real git repositories -------------------------------------------------


def git(repo: Path, *argv: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=CI", "-c", "user.email=ci@example.com",
         "-c", "commit.gpgsign=false", *argv],
        capture_output=True, text=True, check=True,
    )
    return out.stdout


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A git repository with the example bundle committed under policies/; cwd is its root."""
    root = tmp_path / "policy-repo"
    shutil.copytree(EXAMPLE, root / "policies")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "bundle")
    monkeypatch.chdir(root)
    return root


def edit(path: Path, after: str, old: str, new: str) -> int:
    """Replace the first `old` after the line containing `after`; the 1-based line it was on."""
    text = path.read_text()
    start = text.index(after)
    at = text.index(old, start)
    path.write_text(text[:at] + new + text[at + len(old):])
    return text.count("\n", 0, at) + 1


def test_unchanged_bundle_exits_0(repo, capsys):
    assert main(["diff", "--base", "HEAD", "policies"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "no changes against HEAD" in err


def test_breaking_reset_change_exits_1_and_points_at_the_plan(repo, capsys):
    edit(repo / "policies/plans.yaml", "id: premium-monthly", "reset: monthly", "reset: quarterly")
    assert main(["diff", "--base", "HEAD", "policies"]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith("BREAKING policies/plans.yaml:")
    assert "plan premium-monthly: reset monthly (calendar) -> quarterly (calendar)" in lines[0]
    assert "globex-premium-2026" in lines[0]
    assert "1 breaking, 0 non-breaking" in err


def test_limit_change_is_listed_as_ok_and_exits_0(repo, capsys):
    edit(repo / "policies/plans.yaml", "id: premium-monthly", "limit: 20", "limit: 25")
    assert main(["diff", "--base", "HEAD", "policies"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("ok policies/plans.yaml:")
    assert "plan premium-monthly: limit 20 -> 25" in out


def test_removed_plan_is_located_in_the_base_file(repo, capsys):
    path = repo / "policies/plans.yaml"
    text = path.read_text()
    docs = text.split("\n---\n")
    kept = [d for d in docs if "id: weekly-100" not in d]
    assert len(kept) == len(docs) - 1
    path.write_text("\n---\n".join(kept))
    # weekly-100's contracts go too, so the removal itself is not breaking.
    for f in (repo / "policies/contracts").glob("*.yaml"):
        parts = f.read_text().split("\n---\n")
        f.write_text("\n---\n".join(p for p in parts if "plan: weekly-100" not in p))
    main(["diff", "--base", "HEAD", "policies", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    removed = [c for c in report["changes"] if c["kind"] == "plan.removed"]
    assert len(removed) == 1
    assert removed[0]["path"] == "policies/plans.yaml"  # as the user knows it, not a temp dir
    at = removed[0]["line"] - 1  # the plan's document in the base file, not the edited one
    assert "id: weekly-100" in text.splitlines()[at : at + 3]


def test_json_format(repo, capsys):
    edit(repo / "policies/plans.yaml", "id: premium-monthly", "sla: premium", "sla: basic")
    assert main(["diff", "--base", "HEAD", "policies", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["base"] == "HEAD" and report["breaking"] == 1
    change = only([c for c in report["changes"] if c["breaking"]])
    assert change["kind"] == "plan.sla_changed"
    assert change["path"] == "policies/plans.yaml" and change["line"] >= 1


def test_dir_relative_to_a_subdirectory_of_the_repository(repo, capsys, monkeypatch):
    edit(repo / "policies/plans.yaml", "id: premium-monthly", "unit: incidents", "unit: hours")
    monkeypatch.chdir(repo / "policies" / "contracts")
    assert main(["diff", "--base", "HEAD", ".."]) == 1
    out, _ = capsys.readouterr()
    assert "plan premium-monthly: unit incidents -> hours" in out


def test_working_tree_is_compared_with_an_older_commit(repo, capsys):
    edit(repo / "policies/plans.yaml", "id: premium-monthly", "limit: 20", "limit: 30")
    git(repo, "commit", "-q", "-am", "more incidents")
    assert main(["diff", "--base", "HEAD~1", "policies"]) == 0
    assert "limit 20 -> 30" in capsys.readouterr().out
    assert main(["diff", "--base", "HEAD", "policies"]) == 0
    assert capsys.readouterr().out == ""


def test_unknown_ref_exits_2(repo, capsys):
    assert main(["diff", "--base", "origin/no-such-branch", "policies"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "unknown git ref 'origin/no-such-branch'" in err


def test_dir_absent_at_ref_means_everything_is_new(repo, capsys):
    shutil.copytree(repo / "policies", repo / "staging")
    assert main(["diff", "--base", "HEAD", "staging"]) == 0
    out, err = capsys.readouterr()
    assert "staging does not exist at HEAD" in err
    assert out and all(line.startswith("ok staging/") for line in out.splitlines())
    assert "contract globex-premium-2026 added" in out


def test_dir_outside_any_repository_exits_2(tmp_path, capsys, monkeypatch):
    shutil.copytree(EXAMPLE, tmp_path / "loose")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert main(["diff", "--base", "HEAD", "loose"]) == 2
    assert "not inside a git repository" in capsys.readouterr().err


def test_dir_that_is_a_file_at_ref_exits_2(repo, capsys):
    (repo / "later").write_text("not yet a bundle\n")
    git(repo, "add", "later")
    git(repo, "commit", "-q", "-m", "placeholder")
    (repo / "later").unlink()
    shutil.copytree(repo / "policies", repo / "later")
    assert main(["diff", "--base", "HEAD", "later"]) == 2
    assert "later is not a directory at HEAD" in capsys.readouterr().err


def test_missing_dir_exits_2(repo, capsys):
    assert main(["diff", "--base", "HEAD", "nowhere"]) == 2
    assert "nowhere is not a directory" in capsys.readouterr().err


def test_invalid_head_bundle_prints_diagnostics_and_exits_1(repo, capsys):
    line = edit(repo / "policies/plans.yaml", "id: premium-monthly", "sla: premium",
                "sla: premium-typo")
    assert main(["diff", "--base", "HEAD", "policies"]) == 1
    out, err = capsys.readouterr()
    assert f"policies/plans.yaml:{line}:" in out
    assert "premium-typo" in out
    assert "invalid" in err and "nothing compared" in err


def test_invalid_base_bundle_compares_nothing_and_exits_2(repo, capsys):
    line = edit(repo / "policies/plans.yaml", "id: premium-monthly", "sla: premium",
                "sla: premium-typo")
    git(repo, "commit", "-q", "-am", "broken")
    edit(repo / "policies/plans.yaml", "id: premium-monthly", "sla: premium-typo",
         "sla: premium")
    assert main(["diff", "--base", "HEAD", "policies"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "policies at HEAD is invalid; nothing compared" in err
    assert f"policies/plans.yaml:{line}:" in err  # located as the user knows the file


def test_template_plan_change_breaks_the_contracts_made_from_it(repo, capsys):
    edit(repo / "policies/templates.yaml", "id: premium-annual", "plan: premium-monthly",
         "plan: basic-monthly")
    assert main(["diff", "--base", "HEAD", "policies"]) == 1
    out, _ = capsys.readouterr()
    breaking = [line for line in out.splitlines() if line.startswith("BREAKING")]
    assert len(breaking) == 2, out
    assert all("plan premium-monthly -> basic-monthly" in line for line in breaking)
    assert "contract globex-premium-2026:" in breaking[0]
    assert "contract globex-premium-2027:" in breaking[1]
    assert all(line.startswith("BREAKING policies/contracts/globex.yaml:") for line in breaking)


def test_new_contract_on_a_plan_discontinued_true_is_breaking(repo, capsys):
    plans = repo / "policies/plans.yaml"
    edit(plans, "id: legacy-gold", "discontinued: 2026-01-01", "discontinued: true")
    with (repo / "policies/contracts/initech.yaml").open("w") as f:
        f.write("kind: Contract\nid: initech-legacy\ncustomer: initech\nplan: legacy-gold\n"
                "products: [onsite]\nstart: 2026-03-01\n"
                "precedence: 5\n")  # initech-basic (precedence 0) covers every product
    assert main(["diff", "--base", "HEAD", "policies"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("ok policies/plans.yaml:")
    assert lines[0].endswith("plan legacy-gold: discontinued 2026-01-01 -> true")
    assert lines[1] == (
        "BREAKING policies/contracts/initech.yaml:1:1: contract initech-legacy added on plan "
        "legacy-gold, which is discontinued"
    )


def test_dir_without_policy_files_at_ref_means_everything_is_new(repo, capsys):
    (repo / "fresh").mkdir()
    (repo / "fresh/README.md").write_text("policies go here\n")
    git(repo, "add", "fresh")
    git(repo, "commit", "-q", "-m", "placeholder")
    shutil.copytree(repo / "policies", repo / "fresh", dirs_exist_ok=True)
    assert main(["diff", "--base", "HEAD", "fresh"]) == 0
    out, err = capsys.readouterr()
    assert "fresh has no policy files at HEAD" in err
    assert "ok fresh/plans.yaml:" in out
