"""Webhook delivery rate against the same receiver's own limit, in one run.

    .venv/bin/python bench/webhooks_bench.py [--alerts 2000] [--store postgresql://...]

Appends N alerts to a fresh store, then measures (1) plain signed POSTs of the same bodies
to a local receiver from one httpx client, one at a time (the most one ordered sender can
do), and (2) entitle's delivery of those alerts to the same receiver (each delivery also
moves the endpoint's cursor in the store: one commit per alert). Prints both rates and
their ratio. A PostgreSQL store gets a schema of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from alerts_bench import fresh_pg

from entitle.server.store import AlertQuery, NewAlert, open_store
from entitle.server.webhooks import WebhookDelivery, load_webhooks
from entitle.server.webhooks.config import key_of
from entitle.server.webhooks.delivery import alert_body
from entitle.server.webhooks.signing import signature_header

SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
AT = datetime(2026, 6, 15, 10, tzinfo=UTC)


class Counter(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real receivers
    count = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        with Counter.lock:
            Counter.count += 1
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def drop_schema(base: str, url: str) -> None:
    import psycopg

    schema = url.rsplit("search_path%3D", 1)[1]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--store", default="")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="entitle-webhooks-bench-")
    url = fresh_pg(args.store) if args.store else f"sqlite:///{work}/bench.db"
    store = open_store(url)
    alerts = [NewAlert(f"bench-{i}", "USAGE_THRESHOLD", f"c-{i % 100}", "acme", "premium", AT,
                       50, "2026-06", {"used": 5, "limit": 10, "unit": "incidents"})
              for i in range(args.alerts)]
    for i in range(0, len(alerts), 1000):
        store.append_alerts(alerts[i: i + 1000], AT)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{server.server_address[1]}/hook"

    page, _, _ = store.alerts(AlertQuery(limit=args.alerts))
    bodies = [(a.cursor, alert_body(a)) for a in page]
    key = key_of(SECRET, "bench")
    start = time.perf_counter()
    with httpx.Client() as client:
        for cursor, body in bodies:
            stamp = int(time.time())
            client.post(target, content=body, headers={
                "content-type": "application/json", "webhook-id": str(cursor),
                "webhook-timestamp": str(stamp),
                "webhook-signature": signature_header([key], str(cursor), stamp, body),
            }).raise_for_status()
    plain = len(bodies) / (time.perf_counter() - start)

    hooks = os.path.join(work, "hooks.yaml")
    with open(hooks, "w") as f:
        f.write(f"endpoints:\n  - id: bench\n    url: {target}\n    secret_env: BENCH_SECRET\n"
                "    start: oldest\n")
    os.environ["BENCH_SECRET"] = SECRET
    Counter.count = 0
    delivery = WebhookDelivery(load_webhooks(hooks), store)
    start = time.perf_counter()
    delivery.start()
    while Counter.count < len(bodies):
        time.sleep(0.005)
    entitle = len(bodies) / (time.perf_counter() - start)
    delivery.stop()
    store.close()
    server.shutdown()
    if args.store:
        drop_schema(args.store, url)
    print(f"store {url.split(':')[0]}, {len(bodies)} alerts")
    print(f"plain signed POSTs, one at a time: {plain:8.0f}/s")
    print(f"entitle delivery (cursor commits): {entitle:8.0f}/s")
    print(f"ratio: {entitle / plain:.2f}")


if __name__ == "__main__":
    main()
