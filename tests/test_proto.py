"""The wire contract: generated code matches proto/, lints clean, agrees with engine and docs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from entitle.engine.model import PRIORITIES
from entitle.v1 import entitle_pb2, entitle_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
BUF = ROOT / ".venv" / "bin" / "buf"
SERVICE = entitle_pb2.DESCRIPTOR.services_by_name["EntitlementService"]
STALE = "generated code is stale: run scripts/genproto"

# rpc -> (request, response, server-streaming)
RPCS = {
    "CheckCoverage": ("CheckCoverageRequest", "CheckCoverageResponse", False),
    "RecordUsage": ("RecordUsageRequest", "RecordUsageResponse", False),
    "ReleaseUsage": ("ReleaseUsageRequest", "ReleaseUsageResponse", False),
    "GetContractStatus": ("GetContractStatusRequest", "GetContractStatusResponse", False),
    "ListContracts": ("ListContractsRequest", "ListContractsResponse", False),
    "ServerInfo": ("ServerInfoRequest", "ServerInfoResponse", False),
    "Reload": ("ReloadRequest", "ReloadResponse", False),
    "Ping": ("PingRequest", "PingResponse", False),
    "WatchAlerts": ("WatchAlertsRequest", "WatchAlertsResponse", True),
    "ListAlerts": ("ListAlertsRequest", "ListAlertsResponse", False),
    "RecordTicketEvents": ("RecordTicketEventsRequest", "RecordTicketEventsResponse", False),
    "GetTicketSla": ("GetTicketSlaRequest", "GetTicketSlaResponse", False),
}


def _plain_names(enum_name: str, prefix: str) -> set[str]:
    values = entitle_pb2.DESCRIPTOR.enum_types_by_name[enum_name].values
    return {v.name.removeprefix(prefix) for v in values if v.number != 0}


def _sandbox(tmp_path: Path) -> Path:
    """A copy of what genproto reads and writes, sharing the real .venv."""
    box = tmp_path / "repo"
    for part in ("scripts", "proto", "entitle/v1"):
        shutil.copytree(ROOT / part, box / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "buf.yaml", box / "buf.yaml")
    (box / ".venv").symlink_to(ROOT / ".venv")
    return box


def _genproto(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    return subprocess.run(
        [str(root / "scripts" / "genproto"), *args],
        cwd=root, capture_output=True, text=True, timeout=120, env=env,
    )


def _generated(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "entitle" / "v1").glob("*.py*"))}


def test_service_has_exactly_the_contract_rpcs():
    assert SERVICE.full_name == "entitle.v1.EntitlementService"
    got = {
        m.name: (m.input_type.name, m.output_type.name, m.server_streaming)
        for m in SERVICE.methods
    }
    assert got == RPCS
    assert not any(m.client_streaming for m in SERVICE.methods)


def test_generated_stub_and_servicer_cover_every_rpc():
    channel = grpc.insecure_channel("127.0.0.1:1")
    try:
        stub = entitle_pb2_grpc.EntitlementServiceStub(channel)
        for name in RPCS:
            assert callable(getattr(stub, name))
            assert callable(getattr(entitle_pb2_grpc.EntitlementServiceServicer, name))
    finally:
        channel.close()


def test_reason_enum_matches_engine_reasons():
    """COVERAGE_REASON_<name> is the engine's reason <name>; adding one side needs the other."""
    from entitle.engine.decide import REASONS  # here, so the rest runs while the engine moves

    assert _plain_names("CoverageReason", "COVERAGE_REASON_") == set(REASONS)


def test_enum_plain_names():
    assert _plain_names("Lifecycle", "LIFECYCLE_") == {"PLANNED", "ACTIVE", "EXPIRED", "SUSPENDED"}
    assert _plain_names("AlertKind", "ALERT_KIND_") == {
        "USAGE_THRESHOLD",
        "QUOTA_EXHAUSTED",
        "CONTRACT_ACTIVATED",
        "CONTRACT_EXPIRING",
        "CONTRACT_EXPIRED",
        "SLA_WARNING",
        "SLA_BREACHED",
    }
    for enum in entitle_pb2.DESCRIPTOR.enum_types_by_name.values():
        assert enum.values_by_number[0].name.endswith("_UNSPECIFIED")


def test_messages_round_trip_through_the_wire_format():
    request = entitle_pb2.CheckCoverageRequest(
        ticket=entitle_pb2.Ticket(
            ticket_id="T-1001",
            customer_id="acme",
            product="backup",
            priority=PRIORITIES[2],
            subject="Restore fails",
            attributes={
                "license_count": entitle_pb2.AttributeValue(number_value=40),
                "tier": entitle_pb2.AttributeValue(string_value="gold"),
            },
        ),
        consume=True,
    )
    request.ticket.created_at.FromJsonString("2026-03-10T09:30:00Z")
    back = entitle_pb2.CheckCoverageRequest.FromString(request.SerializeToString())
    assert back == request
    assert back.ticket.HasField("subject")
    assert back.ticket.attributes["license_count"].WhichOneof("kind") == "number_value"
    assert back.ticket.created_at.ToJsonString() == "2026-03-10T09:30:00Z"
    assert not entitle_pb2.Ticket().HasField("subject")
    assert not entitle_pb2.ContractStatus().HasField("days_to_expiry")


class _Echo(entitle_pb2_grpc.EntitlementServiceServicer):
    def Ping(self, request, context):
        return entitle_pb2.PingResponse()

    def WatchAlerts(self, request, context):
        for cursor in range(request.after_cursor + 1, request.after_cursor + 4):
            yield entitle_pb2.WatchAlertsResponse(
                alert=entitle_pb2.Alert(cursor=cursor, kind=entitle_pb2.ALERT_KIND_QUOTA_EXHAUSTED)
            )


def test_generated_code_serves_unary_and_streaming_calls():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    entitle_pb2_grpc.add_EntitlementServiceServicer_to_server(_Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = entitle_pb2_grpc.EntitlementServiceStub(channel)
            assert stub.Ping(entitle_pb2.PingRequest(), timeout=10) == entitle_pb2.PingResponse()
            stream = stub.WatchAlerts(entitle_pb2.WatchAlertsRequest(after_cursor=7), timeout=10)
            assert [m.alert.cursor for m in stream] == [8, 9, 10]
            with pytest.raises(grpc.RpcError) as err:
                stub.ServerInfo(entitle_pb2.ServerInfoRequest(), timeout=10)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop(None)


def test_committed_generated_code_is_fresh():
    result = _genproto(ROOT, "--check")
    assert result.returncode == 0, result.stderr
    assert STALE not in result.stderr


def test_generation_is_deterministic_and_matches_committed(tmp_path):
    box = _sandbox(tmp_path)
    shutil.rmtree(box / "entitle" / "v1")
    assert _genproto(box).returncode == 0
    first = _generated(box)
    assert _genproto(box).returncode == 0
    assert _generated(box) == first
    assert first == _generated(ROOT)
    assert set(first) == {
        "__init__.py", "entitle_pb2.py", "entitle_pb2.pyi", "entitle_pb2_grpc.py",
        "entitle_connect.py",
    }


@pytest.mark.parametrize("damage", ["edit", "extra", "missing", "connect-edit", "proto-changed"])
def test_check_reports_stale_code(tmp_path, damage):
    box = _sandbox(tmp_path)
    out = box / "entitle" / "v1"
    if damage == "edit":
        with (out / "entitle_pb2.pyi").open("a") as f:
            f.write("# hand edit\n")
    elif damage == "extra":
        (out / "retired_pb2.py").write_text("# from a deleted proto\n")
    elif damage == "missing":
        (out / "entitle_pb2_grpc.py").unlink()
    elif damage == "connect-edit":
        with (out / "entitle_connect.py").open("a") as f:
            f.write("# hand edit\n")
    else:
        proto = box / "proto" / "entitle" / "v1" / "entitle.proto"
        text = proto.read_text().replace(
            "message PingResponse {}",
            "message PingResponse {\n  // Server time.\n  string now = 1;\n}",
        )
        proto.write_text(text)
    result = _genproto(box, "--check")
    assert result.returncode == 1
    assert STALE in result.stderr
    # Regenerating repairs it.
    assert _genproto(box).returncode == 0
    assert _genproto(box, "--check").returncode == 0


def test_check_fails_on_lint_errors(tmp_path):
    if not BUF.exists():
        pytest.skip(f"{BUF} is missing (scripts/setup dev installs buf-bin)")
    box = _sandbox(tmp_path)
    proto = box / "proto" / "entitle" / "v1" / "entitle.proto"
    proto.write_text(proto.read_text().replace("LIFECYCLE_PLANNED = 1", "PLANNED = 1"))
    assert _genproto(box).returncode == 0  # protoc accepts it; only the linter objects
    result = _genproto(box, "--check")
    assert result.returncode == 1
    assert 'entitle.proto:' in result.stdout
    assert 'should be prefixed with "LIFECYCLE_"' in result.stdout
    assert STALE not in result.stderr


def test_buf_lint_passes():
    if not BUF.exists():
        pytest.skip(f"{BUF} is missing (scripts/setup dev installs buf-bin)")
    result = subprocess.run(
        [str(BUF), "lint"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_api_docs_cover_every_rpc_message_field_and_enum_value():
    """docs/api.md is the reference: a field added to the proto must be documented there."""
    docs = (ROOT / "docs" / "api.md").read_text()
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", docs))
    missing = [f"rpc {m.name}" for m in SERVICE.methods if m.name not in words]
    for message in entitle_pb2.DESCRIPTOR.message_types_by_name.values():
        if message.name not in words:
            missing.append(f"message {message.name}")
        missing += [f"{message.name}.{f.name}" for f in message.fields if f.name not in words]
    for enum in entitle_pb2.DESCRIPTOR.enum_types_by_name.values():
        missing += [v.name for v in enum.values if v.name not in words]
    assert not missing, f"docs/api.md does not mention: {', '.join(missing)}"
