"""The one JSON form of wire messages (HTTP face, webhooks, dashboard): complete and canonical.

Canonical proto3 JSON (lowerCamelCase names, enums by name, RFC 3339 timestamps, 64-bit
integers as strings) with every field printed, defaults included: an automation branches on
`"covered": false` and `"remaining": 0`, so they are never left out. Parsing accepts both
lowerCamelCase and the proto's snake_case names, as every Connect implementation does.
"""

from __future__ import annotations

from google.protobuf import json_format
from google.protobuf.message import Message


def to_json(message: Message) -> bytes:
    """The message as compact UTF-8 JSON with every field present."""
    text = json_format.MessageToJson(
        message, indent=None, always_print_fields_with_no_presence=True, ensure_ascii=False
    )
    return text.encode("utf-8")


def to_dict(message: Message) -> dict:
    """The same form as to_json, as a dict (to embed in a larger JSON document)."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


def from_json(data: bytes | str, message: Message) -> Message:
    """Fill `message` from JSON; raises json_format.ParseError naming what is wrong."""
    return json_format.Parse(data, message)
