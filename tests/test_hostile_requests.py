"""Hostile requests get a clear status, the same from SQLite and PostgreSQL, and the server
stays up: every field of every request message, values derived from the descriptors.

One server per store, on real ports, with the same bundle and clock; each generated request
goes to both, in the same order, so both ledgers see the same history. Neither may answer
INTERNAL, UNKNOWN or UNAVAILABLE (both stores are up), both must answer with the same code,
and an INVALID_ARGUMENT always names its field (the `entitle-field` trailer), the same one.
Requests spoilt on the wire (cut, bad UTF-8, mismatched wire types) go to both as well.

Requests over JSON (where a lone surrogate can be spelt) are covered by
tests/test_request_edge.py through the JSON decoding every JSON face shares.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import grpc
import pytest
from conftest import PG_ENV, REQUIRE_PG_ENV, _pg_schema
from hostile_values import raw_requests, requests
from hypothesis import HealthCheck, given, settings
from test_server_harness import in_process, make_bundle

from entitle.server.faces.grpc.status import FIELD_METADATA
from entitle.v1 import entitle_pb2 as pb

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hostile"
SERVICE = "/entitle.v1.EntitlementService"
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE}
STREAM_WAIT = 0.25  # seconds a WatchAlerts stream may stay quiet: it is open, not failed
# Deterministic in CI (a failure there replays locally with the same seed); random elsewhere.
CI = os.environ.get("CI") == "true"
EXAMPLES = int(os.environ.get("ENTITLE_HOSTILE_EXAMPLES", "500"))  # ~10 s on both stores


def hostile_bundle(root: Path) -> Path:
    bundle = make_bundle(root)
    shutil.copy(FIXTURES / "contracts.yaml", bundle / "contracts" / "hostile.yaml")
    return bundle


@contextlib.contextmanager
def pg_schema():
    """A PostgreSQL schema of its own for a module's server (skips when none is up)."""
    base = os.environ.get(PG_ENV)
    if not base:
        if os.environ.get(REQUIRE_PG_ENV):
            pytest.fail(f"{REQUIRE_PG_ENV} is set but {PG_ENV} is not: PostgreSQL is not up")
        pytest.skip("PostgreSQL not available (set ENTITLE_TEST_PG)")
    schema = _pg_schema(base)
    try:
        yield next(schema)
    finally:
        schema.close()  # drops it


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """{"sqlite": server, "postgresql": server}: the same bundle, the same fixed clock."""
    root = tmp_path_factory.mktemp("hostile")
    bundle = hostile_bundle(root)
    with contextlib.ExitStack() as stack:
        pg_url = stack.enter_context(pg_schema())
        sqlite = stack.enter_context(in_process(bundle, f"sqlite:///{root / 'e.db'}"))
        pg = stack.enter_context(in_process(bundle, pg_url))
        yield {"sqlite": sqlite, "postgresql": pg}


def answer(srv, method, request) -> tuple[grpc.StatusCode, str | None]:
    """The call's status code and the field it names (None when it names none)."""
    path = f"{SERVICE}/{method.name}"
    serialize = bytes if isinstance(request, bytes) else type(request).SerializeToString
    try:
        if method.server_streaming:
            call = srv.channel.unary_stream(path, request_serializer=serialize)(
                request, timeout=STREAM_WAIT
            )
            try:
                for _ in call:
                    break  # a replayed alert: the stream works
            finally:
                call.cancel()
        else:
            srv.channel.unary_unary(path, request_serializer=serialize)(request, timeout=30)
    except grpc.RpcError as exc:
        code = exc.code()
        if method.server_streaming and code in (
            grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED
        ):
            return grpc.StatusCode.OK, None  # open and quiet until the deadline
        field = dict(exc.trailing_metadata() or ()).get(FIELD_METADATA)
        return code, field
    return grpc.StatusCode.OK, None


def test_hostile_requests_are_answered_alike_by_both_stores(servers):
    seen: dict[str, set[grpc.StatusCode]] = {}

    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=CI, **({"database": None} if CI else {}),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests() | raw_requests())
    def hostile(method_and_request):
        method, request = method_and_request
        answers = {name: answer(srv, method, request) for name, srv in servers.items()}
        for name, (code, field) in answers.items():
            assert code not in NEVER, (name, method.name, request, code)
            if code == grpc.StatusCode.INVALID_ARGUMENT and not isinstance(request, bytes):
                # (bytes that do not parse are refused as a whole: no field to name)
                assert field, (name, method.name, request, "INVALID_ARGUMENT names no field")
        assert answers["sqlite"] == answers["postgresql"], (method.name, request, answers)
        seen.setdefault(method.name, set()).add(answers["sqlite"][0])

    hostile()
    for srv in servers.values():  # still serving, and still the same policy
        assert srv.stub.Ping(pb.PingRequest(), timeout=5) is not None
        assert srv.stub.ServerInfo(pb.ServerInfoRequest(), timeout=5).policy_revision
    # The generator reached every method, and got past the edge on the ones with inputs.
    assert set(seen) == {m.name for m in pb.DESCRIPTOR.services_by_name[
        "EntitlementService"].methods}, seen
    # ... and got answers, not only refusals, from the calls that need no earlier state.
    for name in ("CheckCoverage", "GetContractStatus", "ListContracts", "ListAlerts",
                 "WatchAlerts", "ServerInfo", "Ping"):
        assert grpc.StatusCode.OK in seen[name], (name, seen[name])
