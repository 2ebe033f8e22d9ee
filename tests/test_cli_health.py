"""`entitle health` over a real port: exit 0 only when SERVING, 1 when not, 2 without an answer."""

from __future__ import annotations

from test_server_harness import SERVICE, free_port, in_process, make_bundle

from entitle.cli import main


def health(capsys, port: int, *args: str) -> tuple[int, str, str]:
    code = main(["health", "--server", f"127.0.0.1:{port}", "--timeout", "5", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_serving_server_exits_0(tmp_path, capsys):
    with in_process(make_bundle(tmp_path), f"sqlite:///{tmp_path / 'e.db'}") as srv:
        assert health(capsys, srv.port) == (0, "SERVING\n", "")
        assert health(capsys, srv.port, "--service", SERVICE) == (0, "SERVING\n", "")
        code, out, _ = health(capsys, srv.port, "--service", "no.such.Service")
        assert code == 1 and out.startswith("SERVICE_UNKNOWN")


def test_a_server_started_on_an_invalid_bundle_exits_1_and_says_why(tmp_path, capsys):
    bundle = make_bundle(tmp_path)
    with (bundle / "plans.yaml").open("a") as f:
        f.write("\n---\nkind: Plan\nid: [broken\n")
    with in_process(bundle, f"sqlite:///{tmp_path / 'e.db'}") as srv:
        code, out, err = health(capsys, srv.port)
    assert code == 1, err
    status, reload_error = out.splitlines()
    assert status == "NOT_SERVING"
    assert reload_error.startswith("last reload error: ") and "plans.yaml" in reload_error


def test_nothing_listening_exits_2(capsys):
    code, out, err = health(capsys, free_port())
    assert code == 2 and out == ""
    assert "UNAVAILABLE" in err and "entitle health: 127.0.0.1:" in err


def test_bad_flags_exit_2(capsys, tmp_path):
    code, _, err = health(capsys, free_port(), "--tls-cert", str(tmp_path / "c.pem"))
    assert code == 2 and "--tls-cert and --tls-key go together" in err
    code, _, err = health(capsys, free_port(), "--tls-ca", str(tmp_path / "missing.pem"))
    assert code == 2 and "missing.pem" in err
