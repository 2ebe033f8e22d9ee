"""How CLI commands reach a running server: address, TLS and bearer token, one set of flags."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable

import grpc

TOKEN_ENV = "ENTITLE_TOKEN"
MAX_METADATA_BYTES = 256 * 1024


def timeout_seconds(text: str) -> float:
    """`--timeout`, checked when parsing: gRPC takes 0, negative or NaN deadlines silently."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, not {text!r}")
    return value


def add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", default="127.0.0.1:50051", help="HOST:PORT")
    p.add_argument(
        "--token",
        help=f"bearer token sent as the authorization header (default: ${TOKEN_ENV}; prefer "
        "the variable: command lines are visible to other users)",
    )
    p.add_argument(
        "--tls-ca", metavar="FILE",
        help="connect with TLS, trusting this PEM CA bundle (see also --tls)",
    )
    p.add_argument(
        "--tls", action="store_true", help="connect with TLS, trusting the system's CAs"
    )
    p.add_argument("--tls-cert", metavar="FILE", help="client certificate (mutual TLS)")
    p.add_argument("--tls-key", metavar="FILE", help="client private key (mutual TLS)")
    p.add_argument(
        "--tls-server-name", metavar="NAME",
        help="name to verify the server certificate against, when not the --server host",
    )


def open_channel(args: argparse.Namespace) -> grpc.Channel:
    """Plaintext, or TLS when any --tls* flag is given; raises OSError for unreadable files."""
    # `entitle health` reads one trailing entry per webhook endpoint (up to 64 of them)
    options = [("grpc.max_metadata_size", MAX_METADATA_BYTES)]
    if not (args.tls or args.tls_ca or args.tls_cert or args.tls_key):
        return grpc.insecure_channel(args.server, options=options)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")

    def read(path: str | None) -> bytes | None:
        if path is None:
            return None
        with open(path, "rb") as f:
            return f.read()

    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(args.tls_ca),
        private_key=read(args.tls_key),
        certificate_chain=read(args.tls_cert),
    )
    if args.tls_server_name:
        options.append(("grpc.ssl_target_name_override", args.tls_server_name))
    return grpc.secure_channel(args.server, credentials, options=options)


def with_channel(args: argparse.Namespace, command: str,
                 work: Callable[[grpc.Channel], int]) -> int:
    """`work` on the channel the flags describe, closed after; unusable flags exit 2."""
    try:
        channel = open_channel(args)
    except (OSError, ValueError) as exc:
        print(f"entitle {command}: {exc}", file=sys.stderr)
        return 2
    try:
        return work(channel)
    finally:
        channel.close()


def call_metadata(args: argparse.Namespace) -> list[tuple[str, str]] | None:
    """The authorization header, from --token or $ENTITLE_TOKEN."""
    token = args.token or os.environ.get(TOKEN_ENV)
    return [("authorization", f"Bearer {token}")] if token else None
