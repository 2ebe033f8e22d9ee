"""TLS for the gRPC port: PEM files checked up front, server credentials, the loopback rule."""

from __future__ import annotations

import ipaddress

import grpc

from entitle.server.config import ServeConfig, split_listen

_MARKERS = {
    "certificate": b"-----BEGIN CERTIFICATE-----",
    "private key": b"PRIVATE KEY-----",
}


class TlsError(ValueError):
    """A TLS file cannot be used; the message names the flag and the file."""


def read_pem(path: str, kind: str, flag: str) -> bytes:
    """The file's bytes, when it is readable and holds a PEM `kind` (certificate/private key)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise TlsError(f"{flag} {path}: cannot read: {exc.strerror or exc}") from None
    if _MARKERS[kind] not in data:
        raise TlsError(f"{flag} {path}: not a PEM {kind}")
    return data


def check_tls_flags(config: ServeConfig) -> list[str]:
    """Problems with the TLS flags of `config` (missing pairs, unreadable or non-PEM files)."""
    problems = []
    if bool(config.tls_cert) != bool(config.tls_key):
        problems.append("--tls-cert and --tls-key go together")
    if config.client_ca and not config.tls_cert:
        problems.append("--client-ca needs --tls-cert and --tls-key")
    for path, kind, flag in (
        (config.tls_cert, "certificate", "--tls-cert"),
        (config.tls_key, "private key", "--tls-key"),
        (config.client_ca, "certificate", "--client-ca"),
    ):
        if path:
            try:
                read_pem(path, kind, flag)
            except TlsError as exc:
                problems.append(str(exc))
    return problems


def server_credentials(config: ServeConfig) -> grpc.ServerCredentials | None:
    """None for plaintext; with --client-ca, client certificates are required and verified."""
    if not config.tls_cert:
        return None
    cert = read_pem(config.tls_cert, "certificate", "--tls-cert")
    key = read_pem(config.tls_key, "private key", "--tls-key")
    ca = read_pem(config.client_ca, "certificate", "--client-ca") if config.client_ca else None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
    )


def is_loopback(listen: str) -> bool:
    """Whether HOST:PORT binds only the loopback interface (127.0.0.0/8, ::1, localhost)."""
    host, _ = split_listen(listen)
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
