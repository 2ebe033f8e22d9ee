"""The dashboard over a real HTTP listener with a real client (httpx), on SQLite and PostgreSQL:
sessions and cross-site refusals, pages and their filters, escaping, the live feed's resume."""

from __future__ import annotations

import os
import re
import time
import xml.etree.ElementTree as ET
from datetime import timedelta

import httpx
import pytest
from dashboard_harness import CHECKER, VIEWER, served_dashboard
from test_server_harness import NOW, ticket, wait_for

from entitle.engine.bundle import compile_or_raise
from entitle.engine.usage import StaticUsage
from entitle.server.faces.dashboard.timeline import clock_segments, sla_timeline
from entitle.server.service import board
from entitle.server.service.board import BoardQuery, BoardQueryError, ContractBoard, board_state
from entitle.server.service.wire import timestamp
from entitle.v1 import entitle_pb2 as pb

HOSTILE = "<script>window.__xss=1</script>"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def served(tmp_path, store_url):
    with served_dashboard(tmp_path, store_url) as s:
        yield s


def client(served, *, logged_in: bool = True) -> httpx.Client:
    c = httpx.Client(base_url=served.url, follow_redirects=False, timeout=20)
    if logged_in:
        r = c.post("/login", data={"token": VIEWER}, headers={"origin": served.origin})
        assert r.status_code == 303
    return c


def admit(served, ticket_id: str, customer: str, product: str) -> pb.CheckCoverageResponse:
    return served.worker.stub.CheckCoverage(
        pb.CheckCoverageRequest(ticket=ticket(ticket_id, customer, product), consume=True),
        metadata=[("authorization", f"Bearer {CHECKER}")], timeout=10,
    )


# -- sessions ---------------------------------------------------------------------------------
def test_pages_need_a_session_and_the_cookie_is_kept_from_scripts_and_other_sites(served):
    c = client(served, logged_in=False)
    r = c.get("/contracts?q=acme")
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard/login?next=%2Fdashboard%2Fcontracts%3Fq%3Dacme"
    assert c.get("/alerts/stream").status_code == 401

    r = c.post("/login", data={"token": "wrong"}, headers={"origin": served.origin})
    assert r.status_code == 401 and "entitle_session" not in r.headers.get("set-cookie", "")

    r = c.post("/login", data={"token": VIEWER, "next": "/dashboard/contracts?q=acme"},
               headers={"origin": served.origin})
    assert r.status_code == 303 and r.headers["location"] == "/dashboard/contracts?q=acme"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; under TLS it is set
    page = c.get("/contracts?q=acme")
    assert page.status_code == 200 and "acme-hours" in page.text

    r = c.post("/logout", headers={"origin": served.origin})
    assert r.status_code == 303 and 'entitle_session=""' in r.headers["set-cookie"]
    c.cookies.clear()
    assert c.get("/contracts").status_code == 303


@pytest.mark.parametrize("headers", [
    {"origin": "http://evil.example"},
    {"referer": "http://evil.example/page"},
    {},  # neither: a form whose origin is unknown is refused too
])
def test_a_post_from_another_site_is_refused(served, headers):
    c = client(served, logged_in=False)
    r = c.post("/login", data={"token": VIEWER}, headers=headers)
    assert r.status_code == 403 and "set-cookie" not in r.headers
    c = client(served)
    r = c.post("/whatif", data={"customer": "globex", "product": "mail"}, headers=headers)
    assert r.status_code == 403
    assert c.post("/logout", headers=headers).status_code == 403


def test_login_never_sends_the_browser_to_another_site(served):
    c = client(served, logged_in=False)
    for target in ("//evil.example/", "https://evil.example/", "/elsewhere", "/dashboard\\x"):
        r = c.post("/login", data={"token": VIEWER, "next": target},
                   headers={"origin": served.origin})
        assert r.headers["location"] == "/dashboard/", target


def test_a_token_removed_from_the_tokens_file_ends_its_sessions(served, tmp_path):
    c = client(served)
    assert c.get("/contracts").status_code == 200
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{CHECKER} checker\n")
    os.utime(tokens, ns=(time.time_ns(), time.time_ns() + 10**9))
    wait_for(lambda: c.get("/contracts").status_code == 303, timeout=10, interval=0.3)


def test_without_a_tokens_file_the_dashboard_is_open(tmp_path, store_url):
    with served_dashboard(tmp_path, store_url, tokens=False) as served:
        c = client(served, logged_in=False)
        assert c.get("/contracts").status_code == 200
        assert c.get("/login").headers["location"] == "/dashboard/"
        assert "Log out" not in c.get("/policy").text


# -- pages ------------------------------------------------------------------------------------
def test_contracts_are_searched_filtered_sorted_and_paged_on_the_server(tmp_path, store_url,
                                                                       monkeypatch):
    monkeypatch.setattr(board, "RANK_USAGE_SECONDS", 0.2)
    with served_dashboard(tmp_path, store_url) as served:
        _searched_filtered_sorted_paged(served)


def _searched_filtered_sorted_paged(served):
    c = client(served)
    for n in range(3):
        assert admit(served, f"UMB-{n}", "umbrella", "analytics").admitted
    assert admit(served, "INI-0", "initrode", "mail").admitted

    def ids(**params) -> list[str]:
        r = c.get("/contracts", params=params)
        assert r.status_code == 200, r.text
        return [line.split('"')[1] for line in r.text.splitlines()
                if line.strip().startswith("<tr data-contract=")]

    assert ids(q="GLOBEX")[:1] == ["globex-legacy-onsite"]  # any case, customer or contract
    assert set(ids(q="pack-end")) == {"umbrella-pack-ending"}
    assert ids(state="expiring") == ["umbrella-pack-ending"]
    assert "umbrella-pack-ending" in ids(state="active")  # expiring contracts are active
    assert ids(state="planned") == ["globex-premium-2027"]
    assert set(ids(plan="incident-pack-10")) == {
        "globex-mail-pack", "fabrikam-pack", "hostile-1", "umbrella-pack-ending",
        "initrode-pack"}
    # the order follows the ledger within the usage snapshot's refresh (shortened here)
    wait_for(lambda: ids(sort="used", plan="incident-pack-10")[:2] == [
        "umbrella-pack-ending", "initrode-pack"], timeout=10, interval=0.2)  # 30 %, then 10 %
    page = c.get("/contracts", params={"q": "umbrella"}).text
    assert "3 / 10 incidents · 7 left" in page
    assert c.get("/contracts", params={"page": 99}).status_code == 200  # clamped to the last
    bad = c.get("/contracts", params={"state": "sleeping"})
    assert bad.status_code == 400 and "state: must be one of planned" in bad.text


def test_the_contract_page_shows_terms_usage_tickets_and_alerts(served):
    for n in range(5):
        admit(served, f"INI-{n}", "initrode", "mail")
    c = client(served)
    page = c.get("/contract", params={"id": "initrode-pack"}).text
    assert "contracts/dashboard-tests.yaml:" in page  # where it was declared, in the bundle
    assert "5 / 10 incidents · 5 left" in page
    assert all(f"INI-{n}" in page for n in range(5))
    assert "has used 50% of 10 incidents" in page  # the alert the fifth admission emitted
    assert '<svg class="chart"' in page
    missing = c.get("/contract", params={"id": "nope"})
    assert missing.status_code == 404 and "no contract &#39;nope&#39;" in missing.text


def test_every_value_is_escaped_and_scripts_may_only_come_from_the_dashboard(served):
    c = client(served)
    for path in ("/contracts?q=hostile", "/contract?id=hostile-1", "/renewals"):
        r = c.get(path)
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in r.text, path
        assert HOSTILE not in r.text and "<img src=x" not in r.text, path
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY"
    r = c.post("/whatif", data={"customer": HOSTILE, "product": "mail", "priority": "high",
                                "created_at": "2026-06-15T10:00:00Z"},
               headers={"origin": served.origin})
    assert HOSTILE not in r.text and "&lt;script&gt;" in r.text


def test_what_if_reads_and_consumes_nothing(served):
    c = client(served)
    form = {"customer": "umbrella", "product": "analytics", "priority": "urgent",
            "created_at": "2026-06-15T10:00:00Z", "subject": "outage",
            "attributes": "license_count=250\ntier=gold"}
    for _ in range(3):
        r = c.post("/whatif", data=form, headers={"origin": served.origin})
        assert r.status_code == 200 and 'id="decision"' in r.text and "Covered" in r.text
    assert served.worker.runtime.store.usage_of("umbrella-pack-ending") == {}
    bad = c.post("/whatif", data={**form, "attributes": "no equals sign"},
                 headers={"origin": served.origin})
    assert "ticket.attributes: line 1: write `name=value`" in bad.text
    bad = c.post("/whatif", data={**form, "priority": "asap"}, headers={"origin": served.origin})
    assert "ticket.priority" in bad.text


def test_the_renewals_csv_is_a_download(served):
    c = client(served)
    r = c.get("/renewals.csv", params={"within": 30})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="renewals-30d-')
    lines = r.text.splitlines()
    assert lines[0].startswith("contract,customer,plan,owner,recipients,state,ends")
    assert [line.split(",")[0] for line in lines[1:]] == ["umbrella-pack-ending"]
    assert c.get("/renewals.csv", params={"within": 45}).status_code == 400


def test_the_live_feed_resumes_after_the_last_event_id(served):
    c = client(served)
    store = served.worker.runtime.store  # contracts activated before NOW: the sweeper's alerts
    latest = wait_for(lambda: store.latest_cursor() if store.latest_cursor() >= 2 else 0)
    with c.stream("GET", "/alerts/stream", headers={"last-event-id": str(latest - 1)}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        ids = []
        for line in r.iter_lines():
            if line.startswith("id: "):
                ids.append(int(line[4:]))
                break
    assert ids == [latest]  # nothing before the cursor, the one after it first
    assert c.get("/alerts/stream", params={"kinds": "NOPE"}).status_code == 400


def test_the_alert_log_is_newest_first_and_filtered(served):
    c = client(served)
    store = served.worker.runtime.store
    wait_for(lambda: store.latest_cursor() >= 2)  # the sweeper's activation alerts
    for n in range(5):
        admit(served, f"INI-{n}", "initrode", "mail")
    page = c.get("/alerts").text
    cursors = [int(part.split('"')[0]) for part in page.split('data-cursor="')[1:]]
    assert cursors == sorted(cursors, reverse=True) and len(cursors) >= 3
    usage = c.get("/alerts", params={"kind": "USAGE_THRESHOLD"}).text
    assert usage.count('data-cursor="') == 1 and "initrode-pack" in usage
    assert c.get("/alerts", params={"customer": "nobody"}).text.count('data-cursor="') == 0
    assert c.get("/alerts", params={"kind": "BOGUS"}).status_code == 400


def test_a_refused_reload_is_shown_with_its_located_errors(served):
    (served.bundle / "plans.yaml").write_text("kind: Plan\nid: x\n")
    served.worker.runtime.reloader.reload("test")
    policy = client(served).get("/policy").text
    assert "Last refused reload" in policy and 'id="reload-errors"' in policy
    assert re.search(r"plans\.yaml:\d+:\d+: ", policy)


def test_with_no_valid_bundle_the_pages_point_at_the_policy_page(tmp_path, store_url):
    def breaks(bundle):
        (bundle / "plans.yaml").write_text("kind: Plan\nid: x\n")

    with served_dashboard(tmp_path, store_url, prepare=breaks) as served:
        c = client(served)
        r = c.get("/contracts")
        assert r.status_code == 400 and "/dashboard/policy" in r.text  # as Connect answers
        assert "no valid policy bundle is loaded" in r.text
        policy = c.get("/policy")
        assert policy.status_code == 200 and "plans.yaml:" in policy.text


# -- the board: the contracts page's index ----------------------------------------------------
@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    from dashboard_harness import dashboard_bundle

    return compile_or_raise(dashboard_bundle(tmp_path_factory.mktemp("board")))


class CountingUsage(StaticUsage):
    """StaticUsage that also answers the board's one-statement read."""

    def current_usage(self):
        return {k: v for k, v in self.by_period.items() if v}

    def usage_of(self, contract_id):
        return {key: v for (cid, key), v in self.by_period.items() if cid == contract_id}


def test_a_contract_is_expiring_within_its_plans_first_expiry_alert(policy):
    contract = policy.contracts["umbrella-pack-ending"]  # incident-pack-10: no expiry alerts
    assert board_state(policy, contract, contract.end_at - timedelta(days=31)) == "active"
    assert board_state(policy, contract, contract.end_at - timedelta(days=30)) == "expiring"
    assert board_state(policy, contract, contract.end_at) == "expired"
    hours = policy.contracts["acme-hours"]  # hours-pack-50 alerts 30 days before the end
    assert board_state(policy, hours, hours.end_at - timedelta(days=29)) == "expiring"


def test_the_index_follows_the_clock_across_period_and_lifecycle_changes(policy):
    board = ContractBoard(CountingUsage())
    planned = BoardQuery(state="planned")
    assert [r.status.contract_id for r in board.page(policy, planned, NOW).rows] == [
        "globex-premium-2027"]
    start = policy.contracts["globex-premium-2027"].start_at
    later = board.page(policy, planned, start + timedelta(seconds=1))
    assert later.total == 0  # it started: recomputed without rebuilding the index
    again = board.page(policy, planned, NOW)  # the clock went back (tests): rebuilt
    assert again.total == 1


def test_ranking_by_percent_used_puts_unlimited_and_idle_contracts_last(policy):
    from entitle.engine.periods import period_at, period_key

    def key(cid):
        c = policy.contracts[cid]
        return (cid, period_key(period_at(policy.plans[c.plan_id], c, NOW)))

    usage = CountingUsage(by_period={key("initrode-pack"): 9.0, key("acme-hours"): 10.0})
    board = ContractBoard(usage)
    rows = board.page(policy, BoardQuery(sort="used"), NOW).rows
    ranked = [r.status.contract_id for r in rows]
    assert ranked[:2] == ["initrode-pack", "acme-hours"]  # 90 %, then 20 %
    unlimited = [r.status.contract_id for r in rows if r.status.quota.unlimited]
    assert ranked.index(unlimited[0]) > ranked.index("fabrikam-pack")
    with pytest.raises(BoardQueryError, match="sort"):
        board.page(policy, BoardQuery(sort="random"), NOW)


# -- SLA clocks -------------------------------------------------------------------------------
def record(served, ticket_id: str, *events: pb.TicketEvent) -> None:
    served.worker.stub.RecordTicketEvents(
        pb.RecordTicketEventsRequest(ticket_id=ticket_id, events=events),
        metadata=[("authorization", f"Bearer {CHECKER}")], timeout=10,
    )


def test_the_sla_page_lists_running_breached_and_paused_clocks(served):
    def at(minutes_before: float):
        return timestamp(NOW - timedelta(minutes=minutes_before))

    def admitted(ticket_id: str, customer: str, product: str, created, priority="high"):
        msg = ticket(ticket_id, customer, product, priority)
        msg.created_at.CopyFrom(created)
        return served.worker.stub.CheckCoverage(
            pb.CheckCoverageRequest(ticket=msg, consume=True),
            metadata=[("authorization", f"Bearer {CHECKER}")], timeout=10)

    assert admitted("RUN-1", "umbrella", "analytics", at(1)).admitted  # just created
    # low: resolution within 14 calendar days, so created 14 days and an hour ago it breached
    # today, an hour before NOW (the business clocks of this desk have not started today)
    assert admitted("LATE-1", "initrode", "mail", at(14 * 1440 + 60), "low").admitted
    assert admitted("WAIT-1", "globex", "sync", at(5)).admitted  # premium: pauses on pending
    record(served, "WAIT-1", pb.TicketEvent(id="e1", type="status_changed", at=at(4),
                                            status="pending"))
    c = client(served)
    page = c.get("/sla")
    assert page.status_code == 200, page.text
    at_risk = page.text.split('id="at-risk"')[1].split('id="breached-today"')[0]
    assert at_risk.index("LATE-1") < at_risk.index("RUN-1")  # overdue first, then least left
    paused = page.text.split('id="paused"')[1]
    assert "WAIT-1" in paused and "RUN-1" not in paused
    wait_for(lambda: "LATE-1" in c.get("/sla").text.split('id="breached-today"')[1]
             .split('id="paused"')[0], timeout=15, interval=0.3)  # the breach alert, today

    one = c.get("/sla", params={"ticket": "WAIT-1"})
    assert one.status_code == 200 and '<svg class="timeline"' in one.text
    assert "status changed</strong> → pending" in one.text and "paused" in one.text
    missing = c.get("/sla", params={"ticket": "NOPE"})
    assert missing.status_code == 404 and "no admitted ticket" in missing.text


def _timeline(html: str) -> ET.Element:
    """The page's timeline SVG, parsed as XML (so it must be well-formed)."""
    svg = html[html.index('<svg class="timeline"'):]
    svg = svg[:svg.index("</svg>") + len("</svg>")]
    return ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def _lanes(svg: ET.Element) -> dict[str, list]:
    """clock -> [(state, from, to)] of its segments, then ("stop", kind) if it stopped."""
    out = {}
    for lane in svg.iter(f"{SVG}g"):
        if "lane" not in lane.get("class", "").split():
            continue
        items = [(r.get("data-state"), r.get("data-from"), r.get("data-to"))
                 for r in lane.iter(f"{SVG}rect")]
        items += [("stop", p.get("data-stop")) for p in lane.iter(f"{SVG}path")]
        out[lane.get("data-clock")] = items
    return out


def test_a_tickets_timeline_shows_it_running_then_paused(served):
    """PREM-7 of the screenshot: created two hours ago, replied after one, pending since
    half an hour: first_response ran and was met; resolution ran 90 minutes, then paused."""
    created = NOW - timedelta(hours=2)
    msg = ticket("PREM-7", "globex", "sync", "medium", created_at=created)
    assert served.worker.stub.CheckCoverage(
        pb.CheckCoverageRequest(ticket=msg, consume=True),
        metadata=[("authorization", f"Bearer {CHECKER}")], timeout=10).admitted
    record(served, "PREM-7",
           pb.TicketEvent(id="r1", type="agent_reply", at=timestamp(NOW - timedelta(hours=1))),
           pb.TicketEvent(id="s1", type="status_changed", status="pending",
                          at=timestamp(NOW - timedelta(minutes=30))))
    page = client(served).get("/sla", params={"ticket": "PREM-7"})
    assert page.status_code == 200, page.text
    svg = _timeline(page.text)
    lanes = _lanes(svg)
    assert lanes == {
        "first_response": [("running", "2026-06-15T08:00:00Z", "2026-06-15T09:00:00Z"),
                           ("stop", "met")],
        "next_response": [],  # inactive: no cycle open
        "resolution": [("running", "2026-06-15T08:00:00Z", "2026-06-15T09:30:00Z"),
                       ("paused", "2026-06-15T09:30:00Z", "")],  # open: paused now
    }
    titles = {t.text for t in svg.iter(f"{SVG}title")}
    assert "resolution, paused: 2026-06-15 09:30 UTC – now" in titles
    assert "resolution, running: 2026-06-15 08:00 UTC – 2026-06-15 09:30 UTC" in titles
    assert "first_response, met: 2026-06-15 09:00 UTC" in titles
    assert "status changed → pending: 2026-06-15 09:30 UTC" in titles
    legend = [t.text for g in svg.iter(f"{SVG}g") if g.get("class") == "legend"
              for t in g.iter(f"{SVG}text")]
    assert legend == ["running", "paused", "breached", "paused, breached", "due time", "breach",
                      "met", "met late", "cancelled", "now"]
    assert "inactive: a cycle opens" in page.text  # an empty lane says why
    words = page.text.split('class="timeline-text"')[1].split("</details>")[0]
    assert "paused <time datetime=\"2026-06-15T09:30:00Z\"" in words and "– now" in words


def _target(metric: str, state: int, start, *, pauses=(), breached=None, stopped=None,
            due=None) -> pb.Target:
    """A clock as GetTicketSla sends it, instants as minutes after NOW."""
    def ts(minutes):
        return timestamp(NOW + timedelta(minutes=minutes))
    out = pb.Target(metric=metric, state=state, started_at=ts(start),
                    pauses=[pb.Pause(start=ts(a)) if b is None else
                            pb.Pause(start=ts(a), end=ts(b)) for a, b in pauses])
    for name, value in (("breached_at", breached), ("stopped_at", stopped), ("due_at", due)):
        if value is not None:
            getattr(out, name).CopyFrom(ts(value))
    return out


@pytest.mark.parametrize(("clock", "expected"), [
    pytest.param(  # ran past its due time, paused, resumed, met late
        _target("resolution", pb.CLOCK_STATE_MET_LATE, 0, pauses=[(90, 100)], breached=60,
                stopped=120, due=60),
        [("running", 0, 60), ("breached", 60, 90), ("paused-breached", 90, 100),
         ("breached", 100, 120)], id="met late"),
    pytest.param(  # a priority change breached it inside a pause, still paused now
        _target("resolution", pb.CLOCK_STATE_BREACHED, 0, pauses=[(30, None)], breached=45,
                due=20),
        [("running", 0, 30), ("paused", 30, 45), ("paused-breached", 45, None)],
        id="breached in a pause"),
    pytest.param(  # a pause from its start, then running, then cancelled by the resolve
        _target("next_response", pb.CLOCK_STATE_CANCELLED, 10, pauses=[(10, 40)], stopped=70),
        [("paused", 10, 40), ("running", 40, 70)], id="cancelled"),
    pytest.param(_target("next_response", pb.CLOCK_STATE_INACTIVE, 0), [], id="inactive"),
])
def test_a_clocks_segments_follow_its_pauses_and_its_breach(clock, expected):
    as_of = NOW + timedelta(minutes=180)
    got = clock_segments(clock, as_of)
    assert [(state, (a - NOW) / timedelta(minutes=1),
             None if b is None else (b - NOW) / timedelta(minutes=1))
            for state, a, b in got] == expected


def test_the_timeline_marks_due_breach_and_stop_on_one_axis():
    sla = pb.TicketSla(ticket_id="T-1", created_at=timestamp(NOW),
                       as_of=timestamp(NOW + timedelta(minutes=180)), clocks=[
        _target("first_response", pb.CLOCK_STATE_MET, 0, stopped=30, due=60),
        _target("next_response", pb.CLOCK_STATE_MET_LATE, 40, breached=100, stopped=120,
                due=100),
        _target("resolution", pb.CLOCK_STATE_RUNNING, 0, due=240),
    ])
    sla.clocks[1].cycle = 1
    t = sla_timeline(sla, [])
    first, cycle, resolution = t.lanes
    assert (first.label, first.state, first.stop.kind, first.breach) == (
        "first_response", "met", "met", None)
    assert first.segments[-1].x1 == first.stop.x
    assert cycle.label == "next_response #1" and cycle.stop.kind == "met-late"
    assert cycle.breach.x == cycle.due.x == cycle.segments[1].x0  # red from the due time on
    assert [s.state for s in cycle.segments] == ["running", "breached"]
    # the axis runs on to the last due time, after now; a running clock's bar ends now
    assert resolution.due.x == t.width - 12 and t.now.x < resolution.due.x
    assert resolution.stop is None and resolution.segments[-1].end is None
    assert resolution.segments[-1].x1 == t.now.x
    assert [g.label for g in t.grid][:3] == ["10:00", "10:30", "11:00"]


def test_the_session_cookie_is_secure_under_tls_and_next_stays_on_the_dashboard():
    from starlette.responses import Response

    from entitle.server.faces.dashboard.session import safe_next, start_session

    response = Response()
    start_session(response, "tok", path="/dashboard/", secure=True)
    cookie = response.headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert safe_next("/dashboard/alerts?kind=SLA_BREACHED", "/dashboard") == (
        "/dashboard/alerts?kind=SLA_BREACHED")
    for target in ("", "/other", "//evil.example/dashboard/", "/dashboard/\r\nx", "https://x"):
        assert safe_next(target, "/dashboard") == "/dashboard/", target


def test_entitle_serve_serves_the_dashboard_on_its_http_listener(tmp_path):
    from dashboard_harness import dashboard_bundle
    from test_server_harness import ServerProcess

    server = ServerProcess(dashboard_bundle(tmp_path), f"sqlite:///{tmp_path / 'e.db'}",
                           tmp_path / "serve.log").start()
    try:
        server.wait_ready()
        base = f"http://127.0.0.1:{server.http_port}/dashboard"
        page = wait_for(lambda: httpx.get(base + "/contracts", timeout=10), timeout=30)
        assert page.status_code == 200 and "umbrella-pack-ending" in page.text
        assert httpx.get(base + "/static/dashboard.js", timeout=10).status_code == 200
    finally:
        assert server.stop() == 0
