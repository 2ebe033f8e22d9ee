"""The dashboard's routes: each page reads through EntitlementCalls (or the board's reads for
what no RPC offers) and renders a template; nothing here writes to the ledger."""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from datetime import timedelta
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from entitle.engine import reports
from entitle.engine.alerts import KINDS
from entitle.engine.model import PRIORITIES
from entitle.engine.snapshot import Snapshot
from entitle.engine.ticket import TicketError, parse_instant
from entitle.server.faces.dashboard import session
from entitle.server.faces.dashboard.chart import usage_chart
from entitle.server.faces.dashboard.render import environment, source
from entitle.server.faces.dashboard.timeline import sla_timeline
from entitle.server.faces.http import sse, threads
from entitle.server.faces.http.call import HttpCall
from entitle.server.faces.http.status import HTTP_STATUS
from entitle.server.runtime import Runtime
from entitle.server.service.access import TokenFile
from entitle.server.service.alertlog import KIND_VALUES
from entitle.server.service.board import (
    SLA_LISTED,
    STATES,
    BoardQuery,
    BoardQueryError,
    ContractBoard,
    board_state,
    expiring_days,
    sla_overview,
    ticket_events,
)
from entitle.server.service.calls import EntitlementCalls
from entitle.server.service.failures import Code, Failure, classify, invalid
from entitle.server.service.wire import timestamp
from entitle.server.snapshots import NoPolicyLoaded
from entitle.v1 import entitle_pb2 as pb

STATIC = __file__.rsplit("/", 1)[0] + "/static"
MOUNT_PATH = "/dashboard"
RENEWAL_WINDOWS = (90, 30, 7)
RENEWALS_PAGE = 100
ALERTS_PAGE = 50
MAX_FORM_BYTES = 64 * 1024
WHATIF_TICKET = "what-if"
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


class Dashboard:
    """One worker's dashboard: its pages over that worker's EntitlementCalls."""

    def __init__(self, runtime: Runtime, calls: EntitlementCalls, tokens: TokenFile | None,
                 secure: bool, executor: Executor | None):
        self.runtime = runtime
        self.executor = executor  # runs the blocking reads (None: the loop's default)
        self.calls = calls
        self.tokens = tokens
        self.secure = secure
        self.board = ContractBoard(runtime.store)
        self.env = environment()

    def warm(self) -> None:
        """Build the contracts index aside (on start and after each reload), so no page waits
        for it; nothing to do while no bundle is loaded."""

        def build() -> None:
            try:
                with self.runtime.holder.lease() as snapshot:
                    self.board.warm(snapshot.policy, self.runtime.clock.now())
            except NoPolicyLoaded:
                pass

        threading.Thread(target=build, name="dashboard-warm", daemon=True).start()

    def source(self, src) -> str:
        return source(src, self.runtime.config.policies)

    # -- plumbing ---------------------------------------------------------------------------
    def rpc(self, name: str, request):
        """One call of the service for this page, under the server's per-call time cap."""
        call = HttpCall(cap_seconds=self.runtime.config.max_call_seconds)
        try:
            return self.calls.handle(name, request, call)
        finally:
            call.end()

    @contextlib.contextmanager
    def lease(self) -> Iterator[Snapshot]:
        """The serving snapshot; none loaded is a Failure (the error page says what to do)."""
        try:
            cm = self.runtime.holder.lease()
            snapshot = cm.__enter__()
        except Exception as exc:
            raise classify(exc) from None
        try:
            yield snapshot
        finally:
            cm.__exit__(None, None, None)

    def render(self, request: Request, template: str, http_status: int = 200,
               **context) -> Response:
        base = request.scope.get("root_path", "")
        html = self.env.get_template(template).render(
            base=base, request_path=request.url.path, auth=self.tokens is not None,
            now=self.runtime.clock.now(), source=self.source,
            sla_enabled=getattr(self.runtime, "sla_clocks", None) is not None, **context,
        )
        return HTMLResponse(html, status_code=http_status, headers=SECURITY_HEADERS)

    def failure_page(self, request: Request, failure: Failure) -> Response:
        status = HTTP_STATUS.get(failure.code, 500)
        return self.render(request, "error.html", http_status=status, failure=failure,
                           code=failure.code.name, title="Cannot show this page")

    def page(self, view: Callable[[Request, dict], Response], *, post: bool = False):
        """An endpoint: session checked, form read, `view` run off the event loop."""

        async def endpoint(request: Request) -> Response:
            base = request.scope.get("root_path", "")
            if request.method == "POST" and not session.same_origin(request):
                return self.render(request, "error.html", http_status=403, code="FORBIDDEN",
                                   title="Refused", failure=Failure(
                                       Code.PERMISSION_DENIED,
                                       "this form was not sent from a page of this dashboard"))
            if session.role_of(self.tokens, request) is None:
                target = urlencode({"next": str(request.url.path) + (
                    f"?{request.url.query}" if request.url.query else "")})
                return RedirectResponse(f"{base}/login?{target}", status_code=303)
            form = {}
            if post:
                body = await request.body()
                if len(body) > MAX_FORM_BYTES:
                    return self.failure_page(request, invalid("form", "is too large"))
                form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"),
                                                      keep_blank_values=True).items()}
            started = time.perf_counter()
            cpu = [0.0]

            def timed() -> Response:
                began = time.thread_time()
                try:
                    return view(request, form)
                finally:
                    cpu[0] = time.thread_time() - began

            try:
                response = await threads.run(self.executor, timed)
            except Failure as failure:
                response = self.failure_page(request, failure)
            except BoardQueryError as exc:
                response = self.failure_page(
                    request, invalid(exc.field, str(exc).split(": ", 1)[1]))
            except Exception as exc:  # logged with an error id, shown as INTERNAL
                response = self.failure_page(request, classify(exc))
            # the server's own time for the page, and the CPU its thread spent on it (browsers'
            # devtools and the benchmark read them)
            response.headers["server-timing"] = (
                f"app;dur={(time.perf_counter() - started) * 1e3:.1f}, "
                f"cpu;dur={cpu[0] * 1e3:.1f}")
            return response

        return endpoint

    # -- login ------------------------------------------------------------------------------
    async def login(self, request: Request) -> Response:
        base = request.scope.get("root_path", "")
        nxt = session.safe_next(request.query_params.get("next", ""), base)
        if self.tokens is None:
            return RedirectResponse(f"{base}/", status_code=303)
        if request.method == "GET":
            return self.render(request, "login.html", title="Log in", next=nxt, error="")
        if not session.same_origin(request):
            return self.render(request, "login.html", http_status=403, title="Log in", next=nxt,
                               error="This form was not sent from a page of this dashboard.")
        body = await request.body()
        form = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))
        token = (form.get("token") or [""])[-1].strip()
        nxt = session.safe_next((form.get("next") or [""])[-1], base)
        role = self.tokens.current().role_of(token) if token else None
        if role is None:
            return self.render(request, "login.html", http_status=401, title="Log in", next=nxt,
                               error="This token is not in the server's tokens file.")
        response = RedirectResponse(nxt, status_code=303)
        session.start_session(response, token, path=f"{base}/", secure=self._secure(request))
        return response

    async def logout(self, request: Request) -> Response:
        base = request.scope.get("root_path", "")
        if not session.same_origin(request):
            return Response("refused: cross-site request", status_code=403)
        response = RedirectResponse(f"{base}/login", status_code=303)
        session.end_session(response, path=f"{base}/", secure=self._secure(request))
        return response

    def _secure(self, request: Request) -> bool:
        return self.secure or request.url.scheme == "https"

    # -- pages ------------------------------------------------------------------------------
    def contracts(self, request: Request, form: dict) -> Response:
        q = request.query_params
        query = BoardQuery(
            search=q.get("q", "").strip(), state=q.get("state", ""), plan_id=q.get("plan", ""),
            sort=q.get("sort", "contract"), page=_int(q.get("page"), 1, "page"),
        )
        now = self.runtime.clock.now()
        with self.lease() as snapshot:
            result = self.board.page(snapshot.policy, query, now)

        def link(**change) -> str:
            params = {"q": query.search, "state": query.state, "plan": query.plan_id,
                      "sort": query.sort, "page": query.page, **change}
            return "?" + urlencode({k: v for k, v in params.items() if v not in ("", None)})

        return self.render(request, "contracts.html", title="Contracts", query=query,
                           result=result, states=STATES, link=link)

    def contract(self, request: Request, form: dict) -> Response:
        contract_id = request.query_params.get("id", "")
        now = self.runtime.clock.now()
        status = self.rpc("GetContractStatus", pb.GetContractStatusRequest(
            contract_id=contract_id, at=timestamp(now))).contract
        with self.lease() as snapshot:
            policy = snapshot.policy
            contract = policy.contracts.get(contract_id)
            if contract is None:  # removed by a reload in between
                raise Failure(Code.NOT_FOUND, f"no contract {contract_id!r} in the policy")
            plan = policy.plans[contract.plan_id]
            history = self.board.usage_history(policy, contract, now)
            state = board_state(policy, contract, now)
        admissions = self.board.admissions(contract.id)
        alerts = self._alerts(pb.AlertFilter(contract_id=contract.id), 0, 20)
        return self.render(
            request, "contract.html", title=f"Contract {contract.id}", status=status,
            contract=contract, plan=plan, state=state, chart=usage_chart(history),
            history=history, admissions=admissions, alerts=alerts,
            expiring_days=expiring_days(plan),
        )

    def _within(self, request: Request) -> int:
        within = _int(request.query_params.get("within"), RENEWAL_WINDOWS[0], "within")
        if within not in RENEWAL_WINDOWS:
            raise invalid("within", f"must be one of {', '.join(map(str, RENEWAL_WINDOWS))}")
        return within

    def renewals(self, request: Request, form: dict) -> Response:
        """One page of `entitle report renewals`: the rows are built for that page only."""
        within = self._within(request)
        page = _int(request.query_params.get("page"), 1, "page")
        if page < 1:
            raise invalid("page", "must be 1 or more")
        now = self.runtime.clock.now()
        with self.lease() as snapshot:
            policy = snapshot.policy
            ending = reports.ending_within(policy, now, timedelta(days=within))
            pages = max(1, math.ceil(len(ending) / RENEWALS_PAGE))
            page = min(page, pages)
            shown = ending[(page - 1) * RENEWALS_PAGE:page * RENEWALS_PAGE]
            rows = reports.renewal_rows(policy, self.runtime.store, shown, now)
        return self.render(request, "renewals.html", title="Renewals", within=within,
                           windows=RENEWAL_WINDOWS, columns=reports.RENEWAL_COLUMNS, rows=rows,
                           total=len(ending), page=page, pages=pages)

    def renewals_csv(self, request: Request, form: dict) -> Response:
        within = self._within(request)
        now = self.runtime.clock.now()
        with self.lease() as snapshot:
            report = reports.renewals(snapshot.policy, self.runtime.store, now,
                                      timedelta(days=within))
        name = f"renewals-{within}d-{report.as_of.strftime('%Y%m%dT%H%MZ')}.csv"
        return Response(reports.render_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{name}"',
                                 "cache-control": "no-store",
                                 "x-content-type-options": "nosniff"})

    def _alert_filter(self, request: Request) -> pb.AlertFilter:
        q = request.query_params
        kind = q.get("kind", "")
        if kind and kind not in KIND_VALUES:
            raise invalid("kind", f"must be one of {', '.join(KINDS)}")
        f = pb.AlertFilter(customer_id=q.get("customer", "").strip())
        if kind:
            f.kinds.append(KIND_VALUES[kind])
        return f

    def _alerts(self, f: pb.AlertFilter, before: int, limit: int) -> list[pb.Alert]:
        return self.calls.recent_alerts(f, before, limit)

    def alerts(self, request: Request, form: dict) -> Response:
        f = self._alert_filter(request)
        before = _int(request.query_params.get("before"), 0, "before")
        page = self._alerts(f, before, ALERTS_PAGE)
        latest = page[0].cursor if page and not before else (
            self.runtime.store.latest_cursor() if not before else 0)
        q = request.query_params
        return self.render(
            request, "alerts.html", title="Alerts", alerts=page, kinds=KINDS,
            kind=q.get("kind", ""), customer=f.customer_id, before=before, latest=latest,
            older=page[-1].cursor if len(page) == ALERTS_PAGE else 0,
            live_query=urlencode({k: v for k, v in (("kind", q.get("kind", "")),
                                                    ("customer", f.customer_id)) if v}),
            stream_query=urlencode({k: v for k, v in (
                ("kinds", q.get("kind", "")), ("customer_id", f.customer_id),
                ("after_cursor", latest)) if v != ""}),
        )

    async def alert_stream(self, request: Request) -> Response:
        """The alerts page's live feed: the HTTP face's SSE stream, behind the session."""
        if session.role_of(self.tokens, request) is None:
            return Response("log in first", status_code=401)
        call = HttpCall()
        try:
            cursor, alert_filter = sse.parse_request(request)
            body = await sse.alert_event_stream(
                self.calls, cursor, alert_filter, call, executor=self.executor)
        except Failure as failure:
            call.end()
            return Response(failure.message, status_code=HTTP_STATUS.get(failure.code, 500))
        return StreamingResponse(_ended(body, call), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    def sla(self, request: Request, form: dict) -> Response:
        """Live tickets' SLA clocks: the lists, or one ticket's clocks and timeline."""
        sla_clocks = getattr(self.runtime, "sla_clocks", None)
        if sla_clocks is None:
            raise Failure(Code.UNIMPLEMENTED, "SLA clocks are not available on this server")
        now = self.runtime.clock.now()
        ticket_id = request.query_params.get("ticket", "").strip()
        if ticket_id:
            found = self.rpc("GetTicketSla", pb.GetTicketSlaRequest(
                ticket_id=ticket_id, at=timestamp(now))).sla
            events = ticket_events(self.runtime.store, ticket_id)
            return self.render(request, "sla_ticket.html", title=f"SLA clocks of {ticket_id}",
                               sla=found, events=events, timeline=sla_timeline(found, events))
        breaches = self.calls.recent_alerts(
            pb.AlertFilter(kinds=[KIND_VALUES["SLA_BREACHED"]]), 0, SLA_LISTED)
        overview = sla_overview(sla_clocks, self.runtime.store, breaches, now)
        return self.render(request, "sla.html", title="SLA clocks", overview=overview,
                           listed=SLA_LISTED)

    def policy(self, request: Request, form: dict) -> Response:
        info = self.rpc("ServerInfo", pb.ServerInfoRequest())
        errors = [line for line in info.last_reload_error.splitlines() if line.strip()]
        policy = None
        try:
            with self.lease() as snapshot:
                policy = snapshot.policy
        except Failure:
            pass
        return self.render(request, "policy.html", title="Policy", info=info, errors=errors,
                           policy=policy)

    def whatif(self, request: Request, form: dict) -> Response:
        now = self.runtime.clock.now()
        values = {
            "customer": "", "product": "", "priority": "high", "subject": "",
            "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "attributes": "", **form,
        }
        decision = error = None
        if request.method == "POST":
            try:
                ticket = self._ticket(values, now)
                answer = self.rpc("CheckCoverage",
                                  pb.CheckCoverageRequest(ticket=ticket, consume=False))
                decision = answer.decision
            except Failure as failure:
                if failure.code != Code.INVALID_ARGUMENT:
                    raise
                error = failure
        return self.render(request, "whatif.html", title="What-if", values=values,
                           priorities=PRIORITIES, decision=decision, error=error)

    @staticmethod
    def _ticket(values: dict, now) -> pb.Ticket:
        try:
            created = parse_instant("created_at", values["created_at"].strip())
        except TicketError as exc:
            raise invalid("ticket.created_at", str(exc).split(": ", 1)[-1]) from None
        ticket = pb.Ticket(
            ticket_id=WHATIF_TICKET, customer_id=values["customer"].strip(),
            product=values["product"].strip(), priority=values["priority"].strip(),
            created_at=timestamp(created),
        )
        if values["subject"].strip():
            ticket.subject = values["subject"].strip()
        for number, line in enumerate(values["attributes"].splitlines(), 1):
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise invalid("ticket.attributes", f"line {number}: write `name=value`")
            ticket.attributes[key.strip()].CopyFrom(_attribute(value.strip()))
        return ticket

    def home(self, request: Request) -> Response:
        return RedirectResponse(f"{request.scope.get('root_path', '')}/contracts",
                                status_code=303)


async def _ended(body: AsyncIterator[bytes], call: HttpCall) -> AsyncIterator[bytes]:
    """The stream's bytes; once the browser goes, its call ends (the stream thread wakes)."""
    try:
        async for chunk in body:
            yield chunk
    finally:
        call.end()


def _attribute(text: str) -> pb.AttributeValue:
    """A number when the text is one (license_count=250), else a string (tier=gold)."""
    try:
        number = float(text)
    except ValueError:
        return pb.AttributeValue(string_value=text)
    if math.isfinite(number):
        return pb.AttributeValue(number_value=number)
    return pb.AttributeValue(string_value=text)


def _int(text: str | None, default: int, field: str) -> int:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise invalid(field, f"must be a whole number, got {text[:40]!r}") from None


def build_dashboard(
    runtime: Runtime, calls: EntitlementCalls, *, tokens: TokenFile | None = None,
    secure: bool | None = None, executor: Executor | None = None,
) -> Starlette:
    """The dashboard as an ASGI app, to mount (e.g. at /dashboard) on the HTTP listener.

    `tokens` defaults to the server's tokens file (none: the dashboard is open); `secure`
    (cookies only over TLS) defaults to whether the server has a TLS certificate."""
    config = runtime.config
    if tokens is None and config.tokens_file:
        tokens = TokenFile(config.tokens_file)
    d = Dashboard(runtime, calls, tokens, bool(config.tls_cert) if secure is None else secure,
                  executor)
    routes = [
        Route("/", d.home),
        Route("/login", d.login, methods=["GET", "POST"]),
        Route("/logout", d.logout, methods=["POST"]),
        Route("/contracts", d.page(d.contracts)),
        Route("/contract", d.page(d.contract)),
        Route("/renewals", d.page(d.renewals)),
        Route("/renewals.csv", d.page(d.renewals_csv)),
        Route("/alerts", d.page(d.alerts)),
        Route("/alerts/stream", d.alert_stream),
        Route("/sla", d.page(d.sla)),
        Route("/policy", d.page(d.policy)),
        Route("/whatif", d.page(d.whatif, post=True), methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.dashboard = d
    runtime.reloader.subscribe(lambda _outcome: d.warm())
    d.warm()
    return app


def mount(runtime: Runtime, calls: EntitlementCalls, executor: Executor | None = None) -> Mount:
    """The dashboard at /dashboard on the HTTP listener (the HTTP face's mount point)."""
    return Mount(MOUNT_PATH, app=build_dashboard(runtime, calls, executor=executor))
