"""`entitle call`: call any RPC of a running server with JSON, found through server reflection."""

from __future__ import annotations

import argparse
import json
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from entitle.cli.connect import add_connection_args, call_metadata, timeout_seconds, with_channel

DEFAULT_SERVICE = "entitle.v1.EntitlementService"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "call",
        help="call an RPC with JSON through server reflection (like grpcurl)",
        description="Looks the method up with server reflection, so no .proto files are "
        "needed. Unary replies print as one JSON object; streams print one per line.",
    )
    p.add_argument(
        "method", nargs="?", help="e.g. CheckCoverage, or grpc.health.v1.Health/Check"
    )
    p.add_argument("request", nargs="?", help="request as JSON (default: stdin, or {})")
    add_connection_args(p)
    p.add_argument(
        "--timeout", type=timeout_seconds, default=10.0, metavar="S",
        help="deadline in seconds (unary)"
    )
    p.add_argument("--list", action="store_true", help="list the services and exit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return with_channel(args, "call", lambda channel: _call(channel, args))


def _call(channel: grpc.Channel, args: argparse.Namespace) -> int:
    try:
        metadata = call_metadata(args)
        database = ProtoReflectionDescriptorDatabase(channel)
        if args.list:
            for name in database.get_services():
                print(name)
            return 0
        if not args.method:
            print("entitle call: name a method (or --list)", file=sys.stderr)
            return 2
        service_name, _, method_name = args.method.rpartition("/")
        service_name = service_name or DEFAULT_SERVICE
        pool = descriptor_pool.DescriptorPool(database)
        try:
            method = pool.FindServiceByName(service_name).FindMethodByName(method_name)
        except KeyError:
            print(f"entitle call: no method {service_name}/{method_name}", file=sys.stderr)
            return 2
        if method is None:
            print(f"entitle call: no method {method_name} in {service_name}", file=sys.stderr)
            return 2
        request_cls = message_factory.GetMessageClass(method.input_type)
        reply_cls = message_factory.GetMessageClass(method.output_type)
        text = args.request
        if text is None:
            text = "{}" if sys.stdin.isatty() else (sys.stdin.read().strip() or "{}")
        try:
            request = json_format.Parse(text, request_cls())
        except json_format.ParseError as exc:
            print(f"entitle call: bad request JSON: {exc}", file=sys.stderr)
            return 2
        path = f"/{service_name}/{method_name}"
        kwargs = {
            "request_serializer": request_cls.SerializeToString,
            "response_deserializer": reply_cls.FromString,
        }
        if method.server_streaming:
            for reply in channel.unary_stream(path, **kwargs)(request, metadata=metadata):
                print(json.dumps(_json(reply)), flush=True)
        else:
            reply = channel.unary_unary(path, **kwargs)(
                request, timeout=args.timeout, metadata=metadata
            )
            print(json.dumps(_json(reply), indent=2))
        return 0
    except grpc.RpcError as exc:
        print(f"entitle call: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1


def _json(message) -> dict:
    """Zero values included: a quota with `used: 0` should say so."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
