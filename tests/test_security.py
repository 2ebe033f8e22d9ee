"""TLS, mutual TLS, bearer tokens and limits, over real TLS connections.

Certificates are made with the `openssl` command (no Python crypto dependency): one CA
signs the server and a client certificate, a second CA signs a client certificate the
server must refuse.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2
from test_server_harness import (
    REPO,
    SERVICE,
    ServerProcess,
    health_status,
    in_process,
    make_bundle,
    ticket,
    wait_for,
)

from entitle.cli import main
from entitle.server.faces.grpc.interceptors import CappedContext
from entitle.server.logs import get_logger
from entitle.server.service import access as auth
from entitle.server.service.access import TokensError, parse_tokens
from entitle.v1 import entitle_pb2 as pb
from entitle.v1 import entitle_pb2_grpc

ADMIN = "adm-3f9c1e7d5b2a48c0a6e4"
CHECKER = "chk-8d2b6a1f0c3e47b9a5d7"
UNKNOWN = "zzz-1a2b3c4d5e6f7a8b9c0d"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(d: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )


def _leaf(d: Path, name: str, ca: str, usage: str) -> None:
    ext = d / f"{name}.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        f"extendedKeyUsage={usage}\n"
    )
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
        cwd=d,
    )
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", ext.name,
        cwd=d,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca")
    _ca(d, "other-ca")
    _leaf(d, "server", "ca", "serverAuth")
    _leaf(d, "client", "ca", "clientAuth")
    _leaf(d, "stranger", "other-ca", "clientAuth")
    return d


@pytest.fixture
def tokens_file(tmp_path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# token role\n{ADMIN} admin\n{CHECKER}   checker  # the helpdesk\n")
    return path


def tls_config(pki: Path, **more) -> dict:
    return {"tls_cert": str(pki / "server.pem"), "tls_key": str(pki / "server.key"), **more}


def tls_channel(pki: Path, port: int, client: str | None = None) -> grpc.Channel:
    key = (pki / f"{client}.key").read_bytes() if client else None
    cert = (pki / f"{client}.pem").read_bytes() if client else None
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(), private_key=key, certificate_chain=cert
    )
    return grpc.secure_channel(f"localhost:{port}", credentials)


def stub(channel: grpc.Channel) -> entitle_pb2_grpc.EntitlementServiceStub:
    return entitle_pb2_grpc.EntitlementServiceStub(channel)


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def code_of(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=10, **kwargs)
    return info.value


@pytest.fixture
def bundle(tmp_path) -> Path:
    return make_bundle(tmp_path)


@pytest.fixture
def store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'e.db'}"


# -- TLS and mutual TLS ----------------------------------------------------------------------
def test_tls_serves_and_a_plaintext_client_is_refused(pki, bundle, store):
    with in_process(bundle, store, config=tls_config(pki)) as srv:
        with tls_channel(pki, srv.port) as channel:
            assert stub(channel).Ping(pb.PingRequest(), timeout=10) is not None
            status, _ = health_status(channel)
            assert status == health_pb2.HealthCheckResponse.SERVING
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as plain:
            err = code_of(stub(plain).Ping, pb.PingRequest())
            assert err.code() == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_refuses_clients_without_a_certificate_of_its_ca(pki, bundle, store):
    config = tls_config(pki, client_ca=str(pki / "ca.pem"))
    with in_process(bundle, store, config=config) as srv:
        with tls_channel(pki, srv.port, client="client") as channel:
            assert stub(channel).Ping(pb.PingRequest(), timeout=10) is not None
        for client in (None, "stranger"):
            with tls_channel(pki, srv.port, client=client) as channel:
                err = code_of(stub(channel).Ping, pb.PingRequest())
                assert err.code() == grpc.StatusCode.UNAVAILABLE, client


# -- bearer tokens ---------------------------------------------------------------------------
@pytest.fixture
def secured(pki, bundle, store, tokens_file):
    config = tls_config(pki, tokens_file=str(tokens_file))
    with in_process(bundle, store, config=config) as srv, tls_channel(pki, srv.port) as ch:
        yield srv, ch


def test_each_authentication_outcome(secured):
    _, channel = secured
    s = stub(channel)
    check = pb.CheckCoverageRequest(ticket=ticket("T-auth"))

    err = code_of(s.CheckCoverage, check)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "bearer" in err.details()

    err = code_of(s.CheckCoverage, check, metadata=bearer(UNKNOWN))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert UNKNOWN not in err.details()

    err = code_of(s.CheckCoverage, check, metadata=(("authorization", f"Basic {CHECKER}"),))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED

    err = code_of(s.Reload, pb.ReloadRequest(), metadata=bearer(CHECKER))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "admin role" in err.details() and CHECKER not in err.details()

    assert s.Reload(pb.ReloadRequest(), timeout=10, metadata=bearer(ADMIN)) is not None
    reply = s.CheckCoverage(check, timeout=10, metadata=bearer(CHECKER))
    assert reply.decision.covered
    # the scheme is case-insensitive; admin may call what checker may
    assert s.ServerInfo(pb.ServerInfoRequest(), timeout=10,
                        metadata=(("authorization", f"bearer {ADMIN}"),)).pid == os.getpid()


def test_health_and_reflection_need_no_token(secured, pki, capsys):
    srv, channel = secured
    status, _ = health_status(channel)
    assert status == health_pb2.HealthCheckResponse.SERVING
    server = f"localhost:{srv.port}"
    assert main(["call", "--server", server, "--tls-ca", str(pki / "ca.pem"), "--list"]) == 0
    assert "entitle.v1.EntitlementService" in capsys.readouterr().out


def test_entitle_health_over_tls(secured, pki, capsys):
    srv, _ = secured
    server = ["health", "--server", f"localhost:{srv.port}"]
    assert main([*server, "--tls-ca", str(pki / "ca.pem")]) == 0  # no token needed
    assert capsys.readouterr().out == "SERVING\n"
    assert main(server) == 2  # plaintext against a TLS port: no answer, not "healthy"
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_entitle_call_over_tls_with_a_token(secured, pki, capsys):
    srv, _ = secured
    base = ["call", "--server", f"localhost:{srv.port}", "--tls-ca", str(pki / "ca.pem")]
    assert main([*base, "ServerInfo", "{}"]) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    assert main([*base, "--token", CHECKER, "ServerInfo", "{}"]) == 0
    assert json.loads(capsys.readouterr().out)["pid"] == os.getpid()


def test_entitle_alerts_over_tls_with_the_token_from_the_environment(secured, pki, capsys,
                                                                     monkeypatch):
    srv, _ = secured
    base = ["alerts", "--server", f"localhost:{srv.port}", "--tls-ca", str(pki / "ca.pem")]
    monkeypatch.delenv("ENTITLE_TOKEN", raising=False)
    assert main(base) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    monkeypatch.setenv("ENTITLE_TOKEN", CHECKER)
    assert main(base) == 0
    assert capsys.readouterr().err == ""


def test_entitle_call_with_a_client_certificate(pki, bundle, store, capsys):
    config = tls_config(pki, client_ca=str(pki / "ca.pem"))
    with in_process(bundle, store, config=config) as srv:
        base = ["call", "--server", f"127.0.0.1:{srv.port}", "--tls-ca", str(pki / "ca.pem"),
                "--tls-server-name", "localhost"]
        client = ["--tls-cert", str(pki / "client.pem"), "--tls-key", str(pki / "client.key")]
        assert main([*base, *client, "Ping", "{}"]) == 0
        capsys.readouterr()
        assert main([*base, "Ping", "{}"]) == 1
        assert "UNAVAILABLE" in capsys.readouterr().err


def test_the_tokens_file_is_reread_when_it_changes(secured, tokens_file, monkeypatch):
    _, channel = secured
    monkeypatch.setattr(auth, "RECHECK_SECONDS", 0.0)
    s = stub(channel)
    tokens_file.write_text(f"{UNKNOWN} checker\n")
    os.utime(tokens_file, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert s.Ping(pb.PingRequest(), timeout=10, metadata=bearer(UNKNOWN)) is not None
    assert code_of(s.Ping, pb.PingRequest(), metadata=bearer(ADMIN)).code() == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    tokens_file.write_text("not a valid line at all\n")  # refused: the previous tokens stay
    os.utime(tokens_file, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    assert s.Ping(pb.PingRequest(), timeout=10, metadata=bearer(UNKNOWN)) is not None


def test_tokens_file_format():
    import hashlib

    hashed = hashlib.sha256(b"s3cret").hexdigest()
    table = parse_tokens(f"a admin\n\n# comment\nsha256:{hashed} checker\n")
    assert table.role_of("a") == "admin"
    assert table.role_of("s3cret") == "checker"
    assert table.role_of(f"sha256:{hashed}") is None  # the digest itself is no token
    for bad in ("a", "a b c", "a root", ""):
        with pytest.raises(TokensError) as info:
            parse_tokens(bad, "t.txt")
        assert "t.txt" in str(info.value)
    with pytest.raises(TokensError) as info:
        parse_tokens("hunter2 superuser\n", "t.txt")
    assert "hunter2" not in str(info.value)


def test_a_tokens_line_with_swapped_columns_never_echoes_the_token(tmp_path, capsys,
                                                                   monkeypatch):
    secret = "Sup3rS3cretT0ken"
    path = tmp_path / "tokens"
    path.write_text(f"# the helpdesk\nadmin {secret}\n")
    with pytest.raises(TokensError) as info:
        auth.load_tokens(str(path))
    message = str(info.value)
    assert f"{path}:2:" in message and "`TOKEN ROLE`" in message
    assert "checker|admin" in message and "swapped" in message and secret not in message

    assert main(["serve", "--tokens", str(path), "--store", f"sqlite:///{tmp_path / 'e.db'}"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2:" in err and secret not in err

    # a running server refusing the changed file logs the same message, no token either
    path.write_text(f"{ADMIN} admin\n")
    tokens = auth.TokenFile(str(path))
    path.write_text(f"admin {secret}\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    monkeypatch.setattr(auth, "RECHECK_SECONDS", 0.0)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    get_logger().addHandler(handler)
    try:
        assert tokens.current().role_of(ADMIN) == "admin"  # the previous tokens stay
    finally:
        get_logger().removeHandler(handler)
    assert [r.msg for r in records] == ["tokens file refused; keeping the previous tokens"]
    assert f"{path}:1:" in records[0].error and secret not in str(vars(records[0]))


# -- limits ----------------------------------------------------------------------------------
def test_an_oversized_request_is_resource_exhausted(pki, bundle, store):
    config = tls_config(pki, max_message_bytes=4096)
    with in_process(bundle, store, config=config) as srv, tls_channel(pki, srv.port) as ch:
        big = ticket("T-big")
        big.subject = "x" * 10_000
        err = code_of(stub(ch).CheckCoverage, pb.CheckCoverageRequest(ticket=big))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        small = pb.CheckCoverageRequest(ticket=ticket("T-small"))
        assert stub(ch).CheckCoverage(small, timeout=10).decision.covered


def test_malformed_requests_do_not_use_up_the_stream_limit(pki, bundle, store):
    config = tls_config(pki, max_streams=5)
    with in_process(bundle, store, config=config) as srv, tls_channel(pki, srv.port) as ch:
        raw = ch.unary_unary(f"/{SERVICE}/CheckCoverage")
        for _ in range(20):  # grpcio alone would leave each counted as an open stream
            err = code_of(raw, b"\x01")
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
        assert stub(ch).Ping(pb.PingRequest(), timeout=10) is not None


def test_calls_get_at_most_the_servers_deadline(pki, bundle, store):
    config = tls_config(pki, max_call_seconds=1e-9)
    with in_process(bundle, store, config=config) as srv, tls_channel(pki, srv.port) as ch:
        err = code_of(stub(ch).Ping, pb.PingRequest())
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_capped_context_never_reports_more_than_the_cap():
    class NoDeadline:
        def time_remaining(self):
            return None

        def peer(self):
            return "ipv4:127.0.0.1:1"

    class Long(NoDeadline):
        def time_remaining(self):
            return 3600.0

    for inner in (NoDeadline(), Long()):
        capped = CappedContext(inner, time.monotonic() + 30)
        assert 29 < capped.time_remaining() <= 30
        assert capped.peer() == "ipv4:127.0.0.1:1"  # everything else is the real context
    short = CappedContext(type("C", (), {"time_remaining": lambda self: 2.0})(), 1e12)
    assert short.time_remaining() == 2.0


# -- the command line ------------------------------------------------------------------------
def _serve(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "entitle", "serve", "--workers", "1", *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )


def test_plaintext_off_loopback_is_refused_without_allow_insecure(tmp_path):
    done = _serve("--listen", "0.0.0.0:0", "--store", f"sqlite:///{tmp_path / 'e.db'}")
    assert done.returncode == 2
    assert "refusing plaintext on 0.0.0.0:0" in done.stderr and "--allow-insecure" in done.stderr


@pytest.mark.parametrize("listen", ["127.0.0.1:0", "[::1]:0", "localhost:0", "127.8.0.1:0"])
def test_loopback_addresses(listen):
    from entitle.server.tls import is_loopback

    assert is_loopback(listen)
    assert not is_loopback("0.0.0.0:1") and not is_loopback("[::]:1")
    assert not is_loopback("10.1.2.3:1") and not is_loopback("example.com:1")


def test_bad_tls_and_token_files_exit_2_naming_the_file(pki, tmp_path, capsys):
    missing = tmp_path / "nope.pem"
    not_pem = tmp_path / "junk.pem"
    not_pem.write_text("hello")
    bad_tokens = tmp_path / "tokens"
    bad_tokens.write_text("only-a-token\n")
    cases = [
        (["--tls-cert", str(missing), "--tls-key", str(pki / "server.key")], str(missing)),
        (["--tls-cert", str(pki / "server.pem"), "--tls-key", str(not_pem)], str(not_pem)),
        (["--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
          "--client-ca", str(missing)], str(missing)),
        (["--tls-cert", str(pki / "server.pem")], "--tls-key"),
        (["--client-ca", str(pki / "ca.pem")], "--client-ca needs --tls-cert"),
        (["--tokens", str(bad_tokens)], str(bad_tokens)),
        (["--tokens", str(missing)], str(missing)),
    ]
    for flags, named in cases:
        code = main(["serve", "--store", f"sqlite:///{tmp_path / 'e.db'}", *flags])
        err = capsys.readouterr().err
        assert code == 2, flags
        assert named in err, (flags, err)


def test_tokens_never_reach_the_logs(pki, bundle, store, tokens_file, tmp_path):
    log = tmp_path / "server.log"
    flags = (
        "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
        "--tokens", str(tokens_file), "--log-level", "debug",
    )
    server = ServerProcess(bundle, store, log, extra_args=flags).start()
    try:
        with tls_channel(pki, server.port) as channel:
            def ready() -> bool:
                assert server.proc.poll() is None, log.read_text()[-3000:]
                try:
                    return health_status(channel)[0] == health_pb2.HealthCheckResponse.SERVING
                except grpc.RpcError:
                    return False

            wait_for(ready, timeout=60, interval=0.2)
            s = stub(channel)
            check = pb.CheckCoverageRequest(ticket=ticket("T-log"))
            for token in (UNKNOWN, CHECKER):
                code_of(s.Reload, pb.ReloadRequest(), metadata=bearer(token))
            code_of(s.CheckCoverage, check, metadata=(("authorization", UNKNOWN),))
            s.CheckCoverage(check, timeout=10, metadata=bearer(CHECKER))
            s.Reload(pb.ReloadRequest(), timeout=10, metadata=bearer(ADMIN))
    finally:
        assert server.stop() == 0
    text = log.read_text()
    assert '"rpc refused"' in text and "PERMISSION_DENIED" in text  # the calls were logged
    for token in (ADMIN, CHECKER, UNKNOWN):
        assert token not in text
