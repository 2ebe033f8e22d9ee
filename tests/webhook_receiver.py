"""Shared by the webhook tests (no tests here): a real HTTP receiver on a real port, scripted
to fail, hang or accept, and the signature check of docs/webhooks.md, taken from the page."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # 32 bytes, test only
OK, FAIL, HANG = "ok", "fail", "hang"


def docs_verifier() -> Callable[..., bool]:
    """`verify_webhook` exactly as docs/webhooks.md prints it (so the recipe is tested)."""
    text = (REPO / "docs" / "webhooks.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    code = next(b for b in blocks if "def verify_webhook" in b)
    scope: dict = {}
    exec(compile(code, "docs/webhooks.md", "exec"), scope)
    return scope["verify_webhook"]


@dataclass
class Request:
    """One POST as the receiver saw it, and what it answered."""

    event_id: str
    headers: dict[str, str]
    body: bytes
    answer: str  # ok, fail or hang
    path: str = "/hooks/entitle"
    at: float = field(default_factory=time.monotonic)

    @property
    def alert(self) -> dict:
        return json.loads(self.body)["alert"]


class Receiver:
    """A webhook receiver; `plan(n, request)` says how to answer the n-th request (from 1)."""

    def __init__(self, plan: Callable[[int, Request], str] = lambda n, r: OK,
                 hang_seconds: float = 2.0, fail_status: int = 503, delay: float = 0.0):
        self.plan = plan
        self.delay = delay  # seconds every answer takes (a slow receiver)
        self.hang_seconds = hang_seconds
        self.fail_status = fail_status
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/entitle"

    def accepted(self, path: str = "/hooks/entitle") -> list[str]:
        """Event ids answered 2xx at `path`, in the order they came."""
        with self.lock:
            return [r.event_id for r in self.requests if r.answer == OK and r.path == path]

    def accepted_requests(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.answer == OK]

    def answers(self) -> list[str]:
        with self.lock:
            return [r.answer for r in self.requests]

    @contextlib.contextmanager
    def running(self) -> Iterator[Receiver]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                event_id = self.headers.get("webhook-id", "")
                with receiver.lock:
                    request = Request(event_id, {k.lower(): v for k, v in self.headers.items()},
                                      body, "", self.path)
                    request.answer = receiver.plan(len(receiver.requests) + 1, request)
                    receiver.requests.append(request)
                    answer = request.answer
                time.sleep(receiver.delay)
                if answer == HANG:
                    time.sleep(receiver.hang_seconds)  # the client has given up by now
                status = 200 if answer == OK else receiver.fail_status
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    reply = b"{}" if answer == OK else b"busy, try later"
                    self.send_header("content-length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def webhooks_file(path: Path, url: str, *, endpoint: str = "ops", extra: str = "",
                  max_attempts: int = 50, timeout: str = "0.5s") -> Path:
    """A webhooks file with one endpoint at `url` (quick retries, the test secret via env)."""
    path.write_text(f"""\
poll: 0.2s
endpoints:
  - id: {endpoint}
    url: {url}
    secret_env: ENTITLE_TEST_WEBHOOK_SECRET
    start: oldest
    timeout: {timeout}
    retry:
      max_attempts: {max_attempts}
      backoff: 0.05s
      max_backoff: 0.2s
{extra}""")
    return path
