"""The one JSON form of wire messages (HTTP face, webhooks, dashboard): complete and canonical.

Canonical proto3 JSON (lowerCamelCase names, enums by name, RFC 3339 timestamps, 64-bit
integers as strings) with every field printed, defaults included: an automation branches on
`"covered": false` and `"remaining": 0`, so they are never left out. Parsing accepts both
lowerCamelCase and the proto's snake_case names, as every Connect implementation does.
"""

from __future__ import annotations

import json
import re

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from entitle.server.service.failures import invalid

_FAILED_FIELD = re.compile(r"Failed to parse (\w+) field: ")


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


def request_from_json(data: bytes | str, message: Message) -> Message:
    """A request from a JSON body, or INVALID_ARGUMENT naming the field that cannot be read
    (bytes that are not UTF-8, a lone surrogate, a number or instant out of its type's range,
    an unknown field or enum name). Faces then pass it to `EntitlementCalls.handle`, whose
    edge checks apply to it as to a binary request."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise invalid("body", f"is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise invalid("body", f"is not JSON: {exc}") from None
    where = _surrogate_at(obj, message.DESCRIPTOR, "")
    if where is not None:  # JSON can spell one (\ud800); it is no Unicode text
        raise invalid(where or "body", "contains a lone surrogate, which is not Unicode text")
    try:
        return json_format.ParseDict(obj, message)
    except json_format.ParseError as exc:
        said = str(exc)
        field = _field_path(message.DESCRIPTOR, _FAILED_FIELD.findall(said)) or "body"
        raise invalid(field, said.rsplit(" field: ", 1)[-1].rstrip(".") + ".") from None
    except (ValueError, TypeError, SystemError) as exc:  # what the C parser lets out
        raise invalid("body", f"is not a JSON request: {exc}") from None


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def _surrogate_at(obj: object, descriptor: Descriptor | None, path: str) -> str | None:
    """The proto field path of the first string holding a lone surrogate ("" for the whole
    body), or None when there is none."""
    if isinstance(obj, str):
        return path if _has_surrogate(obj) else None
    if isinstance(obj, list):  # messages by index (`ticket.events[3].id`), scalars not
        found = (_surrogate_at(item, descriptor, f"{path}[{i}]" if isinstance(item, dict)
                               else path) for i, item in enumerate(obj))
        return next((where for where in found if where is not None), None)
    if not isinstance(obj, dict):
        return None
    for key, value in obj.items():
        if _has_surrogate(key):
            return path
        fd = _field(descriptor, key)
        here = ".".join(filter(None, (path, fd.name if fd is not None else key)))
        if fd is not None and _is_map(fd) and isinstance(value, dict):
            found = _surrogate_in_map(value, fd, here)
        else:
            found = _surrogate_at(value, fd.message_type if fd is not None else None, here)
        if found is not None:
            return found
    return None


def _surrogate_in_map(entries: dict, fd: FieldDescriptor, path: str) -> str | None:
    """As _surrogate_at, in a map: an entry is named by its key (`ticket.attributes.tier`)."""
    value_type = fd.message_type.fields_by_name["value"].message_type
    for key, value in entries.items():
        if _has_surrogate(key):
            return path
        if _surrogate_at(value, value_type, path) is not None:
            return f"{path}.{key}"
    return None


def _field(descriptor: Descriptor | None, json_name: str) -> FieldDescriptor | None:
    """The field a JSON member names: lowerCamelCase or the proto's own name."""
    if descriptor is None:
        return None
    return descriptor.fields_by_camelcase_name.get(json_name) or descriptor.fields_by_name.get(
        json_name
    )


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry


def _field_path(descriptor: Descriptor, json_names: list[str]) -> str:
    """The proto field path (`ticket.ticket_id`) of JSON names (`ticket`, `ticketId`)."""
    path = []
    for name in json_names:
        fd = _field(descriptor, name)
        if fd is None:
            break
        path.append(fd.name)
        if _is_map(fd):
            break  # an entry's key or value: the map names it
        descriptor = fd.message_type
    return ".".join(path)
