"""The runtime's small parts, without a port: snapshot leases, page tokens, config, logs."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime

import grpc
import pytest

from entitle.engine.ticket import TicketError
from entitle.server.clock import FixedClock, SystemClock
from entitle.server.config import FAKE_NOW_ENV, ServeConfig, runtime_clock, split_listen
from entitle.server.faces.grpc.servicer import EntitlementServicer
from entitle.server.logs import JsonLines
from entitle.server.service.calls import EntitlementCalls
from entitle.server.service.pages import (
    PageTokenError,
    decode_page_token,
    encode_page_token,
    page_size,
    query_fingerprint,
)
from entitle.server.snapshots import NoPolicyLoaded, SnapshotHolder
from entitle.server.store.base import redact
from entitle.server.supervisor import reserve_port
from entitle.v1 import entitle_pb2 as pb

T0 = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


class FakePolicy:
    def __init__(self, revision: str):
        self.revision = revision


class FakeSnapshot:
    def __init__(self, revision: str):
        self.policy = FakePolicy(revision)
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_no_snapshot_means_no_policy_loaded():
    holder = SnapshotHolder()
    assert holder.serving() is None
    with pytest.raises(NoPolicyLoaded), holder.lease():
        pass


def test_swap_closes_an_unused_snapshot_at_once():
    holder = SnapshotHolder()
    a, b = FakeSnapshot("a"), FakeSnapshot("b")
    holder.swap(a, T0)
    holder.swap(b, T0)
    assert a.closed == 1 and b.closed == 0
    assert holder.serving().revision == "b"


def test_swap_closes_a_leased_snapshot_only_after_its_last_lease():
    holder = SnapshotHolder()
    a, b = FakeSnapshot("a"), FakeSnapshot("b")
    holder.swap(a, T0)
    with holder.lease() as first, holder.lease() as second:
        assert first is a and second is a
        holder.swap(b, T0)
        with holder.lease() as third:
            assert third is b  # new requests see the new snapshot at once
        assert a.closed == 0
    assert a.closed == 1  # closed exactly once, by the last lease
    holder.close()
    assert b.closed == 1
    with pytest.raises(NoPolicyLoaded), holder.lease():
        pass


def test_leases_and_swaps_from_many_threads_close_every_old_snapshot_once():
    holder = SnapshotHolder()
    made = [FakeSnapshot("s0")]
    holder.swap(made[0], T0)
    stop = threading.Event()
    used_closed = []

    def reader():
        while not stop.is_set():
            with holder.lease() as snap:
                used_closed.append(snap.closed)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(1, 300):
        made.append(FakeSnapshot(f"s{i}"))
        holder.swap(made[-1], T0)
    stop.set()
    for t in threads:
        t.join()
    assert not any(used_closed), "a request saw a closed snapshot"
    assert [s.closed for s in made[:-1]] == [1] * (len(made) - 1)
    assert made[-1].closed == 0


def test_page_tokens_continue_only_their_own_listing():
    q = query_fingerprint("acme", "active")
    token = encode_page_token("acme-backup", q)
    assert decode_page_token(token, q) == "acme-backup"
    assert decode_page_token("", q) is None
    with pytest.raises(PageTokenError, match="different filters"):
        decode_page_token(token, query_fingerprint("globex", "active"))
    for bad in ("not a token!", "e30", "x" * 2000, encode_page_token("a", q)[:-3]):
        with pytest.raises(PageTokenError):
            decode_page_token(bad, q)


def test_page_size_defaults_clamps_and_refuses_negatives():
    assert page_size(0) == 100
    assert page_size(5) == 5
    assert page_size(10**6) == 1000
    with pytest.raises(ValueError):
        page_size(-1)


def test_listen_addresses():
    assert split_listen("127.0.0.1:50051") == ("127.0.0.1", 50051)
    assert split_listen("[::1]:0") == ("::1", 0)
    for bad in ("50051", "host:", ":80", "host:99999", "host:http"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            split_listen(bad)


def test_reserving_port_zero_gives_a_port_workers_can_share():
    sock, listen = reserve_port("127.0.0.1:0")
    try:
        host, port = split_listen(listen)
        assert host == "127.0.0.1" and port > 0
        again, _ = reserve_port(listen)  # SO_REUSEPORT: a second binder is welcome
        again.close()
    finally:
        sock.close()


def test_config_round_trips_through_json():
    config = ServeConfig(policies="/p", workers=3, reload_interval=0.5)
    assert ServeConfig.from_json(config.to_json()) == config


def test_fake_now_is_read_only_from_its_variable(monkeypatch):
    monkeypatch.delenv(FAKE_NOW_ENV, raising=False)
    assert isinstance(runtime_clock(), SystemClock)
    monkeypatch.setenv(FAKE_NOW_ENV, "2026-03-10T09:00:00Z")
    clock = runtime_clock()
    assert isinstance(clock, FixedClock) and clock.now() == T0
    monkeypatch.setenv(FAKE_NOW_ENV, "yesterday")
    with pytest.raises(ValueError, match=FAKE_NOW_ENV):
        runtime_clock()


def test_store_passwords_stay_out_of_logs():
    redacted = redact("postgresql://app:s3cret@db:5432/entitle")
    assert redacted == "postgresql://app:***@db:5432/entitle"
    assert redact("sqlite:///entitle.db") == "sqlite:///entitle.db"


def test_log_lines_are_json_with_extra_fields_and_tracebacks():
    formatter = JsonLines({"worker": 2})
    record = logging.makeLogRecord(
        {"msg": "reload refused", "levelname": "ERROR", "reason": "SIGHUP", "created": 0}
    )
    line = json.loads(formatter.format(record))
    assert line["event"] == "reload refused" and line["level"] == "error"
    assert line["reason"] == "SIGHUP" and line["worker"] == 2
    try:
        raise KeyError("boom")
    except KeyError:
        import sys

        record = logging.makeLogRecord({"msg": "failed", "exc_info": sys.exc_info()})
    assert "KeyError" in json.loads(formatter.format(record))["traceback"]


class FakeContext:
    """Just enough of grpc.ServicerContext to watch what a handler does."""

    def __init__(self, remaining: float | None):
        self.remaining = remaining
        self.aborted: tuple | None = None
        self.trailing = ()

    def time_remaining(self):
        return self.remaining

    def set_trailing_metadata(self, md):
        self.trailing = md

    def abort(self, code, details):
        self.aborted = (code, details)
        raise RuntimeError("aborted")


class Calls(EntitlementCalls):
    """An implementation whose `ping` misbehaves on request: the gRPC face maps what it raises."""

    def __init__(self, mode: str = "ok"):  # no runtime: only ping is called
        self.ran = 0
        self.mode = mode

    def ping(self, request, call):
        self.ran += 1
        if self.mode == "bad":
            raise TicketError("priority", "unknown priority 'critical'")
        if self.mode == "boom":
            raise ZeroDivisionError("secret detail")
        return "done"


def test_expired_deadline_starts_no_work():
    calls, context = Calls(), FakeContext(remaining=0.0)
    with pytest.raises(RuntimeError, match="aborted"):
        EntitlementServicer(calls).Ping(pb.PingRequest(), context)
    assert calls.ran == 0 and context.aborted[0] == grpc.StatusCode.DEADLINE_EXCEEDED
    answer = EntitlementServicer(Calls()).Ping(pb.PingRequest(), FakeContext(remaining=None))
    assert answer == "done"


def test_errors_become_statuses_without_leaking_internals(caplog):
    servicer, context = EntitlementServicer(Calls("bad")), FakeContext(remaining=5.0)
    with pytest.raises(RuntimeError):
        servicer.Ping(pb.PingRequest(), context)
    assert context.aborted == (
        grpc.StatusCode.INVALID_ARGUMENT, "priority: unknown priority 'critical'"
    )
    assert dict(context.trailing)["entitle-field"] == "priority"
    context = FakeContext(remaining=5.0)
    with pytest.raises(RuntimeError):
        servicer.calls.mode = "boom"
        servicer.Ping(pb.PingRequest(), context)
    code, details = context.aborted
    assert code == grpc.StatusCode.INTERNAL and "secret" not in details
    error_id = details.split("error id ")[1].split(",")[0]
    assert any(getattr(r, "error_id", None) == error_id for r in caplog.records)
