"""The dashboard in a real browser: Playwright driving Debian's headless Chromium.

One worker (gRPC on a real port) and its dashboard serve every test of this module; each test
gets a fresh browser profile, so it logs in itself. With ENTITLE_SCREENSHOTS=1 the tests save
a screenshot of each page into docs/screenshots/ (README links them).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from dashboard_harness import CHECKER, VIEWER, served_dashboard
from test_server_harness import NOW, REPO, ticket

from entitle.server.service.wire import timestamp
from entitle.v1 import entitle_pb2 as pb

CHROMIUM = shutil.which("chromium")
SCREENSHOTS = REPO / "docs" / "screenshots"
HOSTILE = "<script>window.__xss=1</script>"
HOSTILE_CUSTOMER = HOSTILE + '<img src=x onerror="window.__xss=2">'  # as in the fixture
ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

if CHROMIUM is None:
    if os.environ.get("ENTITLE_REQUIRE_BROWSER"):
        pytest.fail("ENTITLE_REQUIRE_BROWSER is set but chromium is not installed",
                    pytrace=False)
    print("NOTICE: chromium is not installed: browser tests skipped", file=sys.stderr)
    pytest.skip("chromium not installed (scripts/test installs it)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("dashboard")
    with served_dashboard(root, f"sqlite:///{root / 'entitle.db'}") as s:
        yield s


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture
def page(playwright, tmp_path, request):
    """A fresh profile (no cookies) at 1280 px, JavaScript errors collected."""
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS,
        viewport={"width": 1280, "height": 900}, timezone_id="Europe/Paris",
        accept_downloads=True,
    )
    page = context.pages[0] if context.pages else context.new_page()
    page.set_default_timeout(15_000)
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    yield page
    context.close()


def shoot(page, name: str, *, full: bool = True) -> None:
    """docs/screenshots/NAME.png, only when ENTITLE_SCREENSHOTS=1 (CI leaves the tree clean)."""
    if os.environ.get("ENTITLE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full)


def log_in(page, served, token: str = VIEWER, target: str = "/contracts") -> None:
    page.goto(served.url + target)
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**/dashboard{target}*")


def quota_text(page) -> str:
    return page.locator("#quota .figures").inner_text()


def test_login_then_a_quota_bar_follows_an_admission_made_over_grpc(page, served):
    page.goto(served.url + "/contracts")
    assert "/dashboard/login" in page.url  # not logged in: the login form, nothing else
    shoot(page, "login")
    page.get_by_label("Token").fill("not-a-token")
    page.get_by_role("button", name="Log in").click()
    assert "not in the server's tokens file" in page.locator("#login-error").inner_text()
    page.get_by_label("Token").fill(VIEWER)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/contracts")
    assert page.locator("tr[data-contract='umbrella-pack-ending']").count() == 1
    shoot(page, "contracts")

    page.get_by_role("link", name="umbrella-pack-ending").click()
    page.wait_for_url("**/contract?id=umbrella-pack-ending")
    assert quota_text(page).startswith("0 / 10 incidents")
    answer = served.worker.stub.CheckCoverage(
        pb.CheckCoverageRequest(ticket=ticket("UMB-1", "umbrella", "analytics"), consume=True),
        metadata=[("authorization", f"Bearer {CHECKER}")], timeout=10,
    )
    assert answer.admitted and answer.decision.contract_id == "umbrella-pack-ending"
    page.reload()
    assert quota_text(page).startswith("1 / 10 incidents · 9 left")
    assert page.locator("text=UMB-1").count() == 1  # the admitted tickets list
    assert page.locator("svg.chart .bar.current text.value").text_content() == "1"
    shoot(page, "contract")

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/dashboard/login")
    page.goto(served.url + "/contracts")
    assert "/dashboard/login" in page.url


def test_an_alert_appears_live_without_a_reload(page, served):
    log_in(page, served, target="/alerts")
    status = page.locator("#live-status.connected")
    status.wait_for()
    before = page.locator("#alerts li").count()
    stub = served.worker.stub
    for n in range(5):  # incident-pack-10 alerts at 50 %: the fifth admission crosses it
        stub.CheckCoverage(
            pb.CheckCoverageRequest(ticket=ticket(f"INI-{n}", "initrode", "mail"), consume=True),
            metadata=[("authorization", f"Bearer {CHECKER}")], timeout=10,
        )
    fresh = page.locator("#alerts li.fresh", has_text="initrode-pack")
    fresh.first.wait_for()
    assert "usage threshold" in fresh.first.locator(".kind").inner_text()
    assert page.locator("#alerts li").count() > before
    # the new row's time is in the viewer's zone (Paris), UTC on hover
    when = fresh.first.locator("time")
    assert when.get_attribute("title").endswith("UTC")
    assert "UTC" not in when.inner_text()
    assert not page.errors
    shoot(page, "alerts")


def test_a_refused_reload_shows_its_located_error(page, served):
    broken = served.bundle / "zz-broken.yaml"
    broken.write_text("kind: Plan\nid: broken\ntype: per_period\nunit: incidents\n")
    try:
        served.worker.runtime.reloader.reload("test")
        log_in(page, served, target="/policy")
        text = page.locator("#reload-errors").inner_text()
        assert re.search(r"zz-broken\.yaml:\d+:\d+: ", text), text
        assert page.locator("#revision").inner_text()  # the last good revision still serves
        shoot(page, "policy")
    finally:
        broken.unlink()
        served.worker.runtime.reloader.reload("test")
    page.reload()
    assert page.locator("#reload-errors").count() == 0


def test_what_if_shows_the_decision_and_consumes_nothing(page, served):
    store = served.worker.runtime.store
    log_in(page, served, target="/whatif")
    page.get_by_label("Customer").fill("umbrella")
    page.get_by_label("Product").fill("analytics")
    page.get_by_label("Priority").select_option("urgent")
    page.get_by_label("Created at (ISO 8601, with Z or an offset)").fill(
        NOW.strftime("%Y-%m-%dT%H:%M:%SZ"))
    page.get_by_label("Subject").fill("Dashboards down")
    used_before = store.usage_of("umbrella-pack-ending")
    page.get_by_role("button", name="Decide").click()
    decision = page.locator("#decision")
    decision.wait_for()
    assert decision.locator("h2").inner_text().startswith("Covered")
    assert "umbrella-pack-ending" in decision.inner_text()
    assert page.locator("#targets tbody tr").count() >= 1
    assert store.usage_of("umbrella-pack-ending") == used_before  # nothing consumed
    shoot(page, "whatif")

    page.get_by_label("Customer").fill("globex")
    page.get_by_label("Created at (ISO 8601, with Z or an offset)").fill("yesterday")
    page.get_by_role("button", name="Decide").click()
    assert "ticket.created_at" in page.locator("#whatif-error").inner_text()


def test_the_renewals_csv_is_what_entitle_report_prints(page, served):
    log_in(page, served, target="/renewals")
    shoot(page, "renewals")
    with page.expect_download() as info:
        page.locator("#csv").click()
    download = info.value
    assert download.suggested_filename.startswith("renewals-90d-")
    got = Path(download.path()).read_text()
    report = subprocess.run(
        [sys.executable, "-m", "entitle", "report", "renewals", "--within", "90d", "--csv",
         "--policies", str(served.bundle), "--store", served.worker.runtime.config.store_url,
         "--now", NOW.isoformat()],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout
    assert got == report
    rows = list(csv.DictReader(io.StringIO(got)))
    ending = {r["contract"]: r for r in rows}
    recipients = ending["umbrella-pack-ending"]["recipients"]
    assert recipients == "it@umbrella.example cfo@umbrella.example"
    assert ending["hostile-1"]["customer"].startswith(HOSTILE)


def test_a_customer_id_with_script_is_shown_as_text_on_every_page(page, served):
    log_in(page, served, target="/alerts")
    page.locator("#live-status.connected").wait_for()
    for n in range(5):  # the hostile customer's contract crosses 50 %: an alert names it
        served.worker.stub.CheckCoverage(
            pb.CheckCoverageRequest(ticket=ticket(f"XSS-{n}", HOSTILE_CUSTOMER, "mail"),
                                    consume=True),
            metadata=[("authorization", f"Bearer {CHECKER}")], timeout=10,
        )
    live = page.locator("#alerts li.fresh", has_text="hostile-1").first
    live.wait_for()
    assert HOSTILE in live.locator(".customer").inner_text()  # inserted live, as text
    assert page.evaluate("window.__xss") is None
    for target in ("/contracts?q=hostile", "/contract?id=hostile-1", "/renewals", "/alerts"):
        page.goto(served.url + target)
        assert page.evaluate("window.__xss") is None, target
        assert HOSTILE in page.locator("main").inner_text(), target
        assert page.locator("main script, main img").count() == 0, target
    page.goto(served.url + "/alerts?" + urlencode({"customer": HOSTILE_CUSTOMER}))
    assert page.get_by_label("Customer").input_value() == HOSTILE_CUSTOMER
    assert page.locator("#alerts li").count() >= 1 and page.evaluate("window.__xss") is None
    page.goto(served.url + "/whatif")
    page.get_by_label("Customer").fill(HOSTILE)
    page.get_by_label("Product").fill("<img src=x onerror=window.__xss=3>")
    page.get_by_role("button", name="Decide").click()
    page.locator("#decision").wait_for()
    assert page.evaluate("window.__xss") is None
    assert HOSTILE in page.locator("#decision").inner_text()
    assert not page.errors


def test_keyboard_users_skip_to_the_content_and_see_where_focus_is(page, served):
    log_in(page, served)
    page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    assert skip.evaluate("el => el === document.activeElement")
    assert skip.is_visible()  # shown once focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_the_contracts_page_reads_on_a_phone(page, served):
    log_in(page, served, target="/contracts?sort=used")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1  # no sideways scrolling: rows become cards
    assert page.locator("td[data-label='Quota']").first.is_visible()
    shoot(page, "contracts-phone")


def test_the_sla_page_shows_live_clocks_and_a_tickets_timeline(page, served):
    md = [("authorization", f"Bearer {CHECKER}")]
    msg = ticket("PREM-7", "globex", "sync", "medium",
                 created_at=NOW - timedelta(hours=2))  # premium: pauses while pending
    served.worker.stub.CheckCoverage(pb.CheckCoverageRequest(ticket=msg, consume=True),
                                     metadata=md, timeout=10)
    served.worker.stub.RecordTicketEvents(pb.RecordTicketEventsRequest(
        ticket_id="PREM-7", events=[
            pb.TicketEvent(id="r1", type="agent_reply", at=timestamp(NOW - timedelta(hours=1))),
            pb.TicketEvent(id="s1", type="status_changed", status="pending",
                           at=timestamp(NOW - timedelta(minutes=30))),
        ]), metadata=md, timeout=10)
    log_in(page, served, target="/sla")
    assert page.locator("#paused", has_text="PREM-7").count() == 1
    shoot(page, "sla")
    page.locator("#paused").get_by_role("link", name="PREM-7").click()
    page.wait_for_url("**/sla?ticket=PREM-7")
    clocks = page.locator("#clocks").inner_text()
    assert "first_response" in clocks and "met" in clocks and "paused" in clocks
    assert page.locator("svg.timeline .lane").count() >= 2
    # resolution ran 10:00-11:30 Paris time, then paused: two segments, the pause hatched,
    # each titled with its state in the viewer's time and in UTC
    lane = page.locator("svg.timeline .lane[data-clock='resolution']")
    assert lane.locator("rect.seg").evaluate_all("rs => rs.map(r => r.dataset.state)") == [
        "running", "paused"]
    paused = lane.locator("rect.seg.paused")
    assert paused.evaluate("r => getComputedStyle(r).fill").startswith("url(")  # hatching
    title = paused.locator("title").text_content()
    assert title.startswith("resolution, paused: ") and "11:30" in title
    assert title.endswith("– now (2026-06-15 09:30 UTC – now)")
    assert "status changed" in page.locator("#events").inner_text()
    shoot(page, "sla-ticket")
