"""The checks every request passes before its call runs, whichever face it came from.

One walk over the request message, driven by its descriptor, so a new field or a new RPC is
covered without code: every string (identifiers and free text, `engine.text`, with its
length), every instant (the accepted range), every 64-bit integer (what the stores hold),
every enum (a value the contract defines: proto3 enums are open on the wire) and every
floating-point number (finite). The rules that belong to one field (created_at at most a day
ahead, amount at most 1,000,000, an unknown priority) stay with the call that knows them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from datetime import timedelta

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from entitle.engine.text import TextKind, text_problem
from entitle.engine.ticket import EARLIEST, MAX_ATTRIBUTE_KEY, MAX_SUBJECT, MAX_TEXT
from entitle.server.service.failures import invalid
from entitle.server.service.wire import EPOCH, MAX_SECONDS, MIN_SECONDS

TIMESTAMP = "google.protobuf.Timestamp"
# Instants a request may hold: from 2000-01-01 (as for tickets: earlier is a client's bug)
# to the end of the Timestamp type's range. The engine's time math holds up to that end.
EARLIEST_SECONDS = int((EARLIEST - EPOCH).total_seconds())
INSTANT_RANGE = "2000-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z"
# The stores keep integers as signed 64-bit (SQLite INTEGER, PostgreSQL BIGINT).
MAX_INT64 = 2**63 - 1

# Strings that are free text rather than identifiers (engine.text); every other string is
# an identifier, so a new string field is strict until it is listed here.
FREE_TEXT = frozenset({
    "entitle.v1.Ticket.subject",
    "entitle.v1.ReleaseUsageRequest.reason",
    "entitle.v1.AttributeValue.string_value",
})
# Lengths other than MAX_TEXT (1024 characters), the default of every string.
MAX_CHARS = {
    "entitle.v1.Ticket.subject": MAX_SUBJECT,
    "entitle.v1.Ticket.AttributesEntry.key": MAX_ATTRIBUTE_KEY,
}

_INT64 = frozenset({
    FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64,
})
_FLOATS = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})

Check = Callable[[object, str], None]  # (value, field path) -> None, or raises Failure


def check_request(message: Message) -> None:
    """Raise INVALID_ARGUMENT naming the first field whose value no call accepts."""
    _check_message(message, "", in_map_value=False)


def _check_message(message: Message, prefix: str, *, in_map_value: bool) -> None:
    checks = _checks(message.DESCRIPTOR)
    for fd, value in message.ListFields():  # set fields only: defaults are always accepted
        # A map value's oneof member is the entry itself: `ticket.attributes.tier`.
        path = prefix[:-1] if in_map_value and fd.containing_oneof else prefix + fd.name
        check = checks.get(fd.number)
        if _is_map(fd):
            _check_map(fd, value, path)
        elif fd.is_repeated:
            for item in value:
                _one(fd, check, item, path)
        else:
            _one(fd, check, value, path)


def _one(fd: FieldDescriptor, check: Check | None, value, path: str) -> None:
    if check is not None:
        check(value, path)
    elif fd.message_type is not None:
        _check_message(value, path + ".", in_map_value=False)


def _check_map(fd: FieldDescriptor, entries, path: str) -> None:
    entry = fd.message_type
    key_fd, value_fd = entry.fields_by_name["key"], entry.fields_by_name["value"]
    key_check = _checks(entry).get(key_fd.number)
    value_check = _checks(entry).get(value_fd.number)
    for key in entries:
        if key_check is not None:
            key_check(key, path)  # a bad key cannot name its entry: the map is at fault
        value = entries[key]
        item = f"{path}.{key}"
        if value_check is not None:
            value_check(value, item)
        elif value_fd.message_type is not None:
            _check_message(value, item + ".", in_map_value=True)


@functools.cache
def _is_map(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry


@functools.cache
def _checks(descriptor: Descriptor) -> dict[int, Check]:
    """Per field number, the check of one value of that field (messages are walked)."""
    out: dict[int, Check] = {}
    for fd in descriptor.fields:
        check = _check_for(fd)
        if check is not None:
            out[fd.number] = check
    return out


def _check_for(fd: FieldDescriptor) -> Check | None:
    if fd.type == FieldDescriptor.TYPE_STRING:
        kind = TextKind.FREE_TEXT if fd.full_name in FREE_TEXT else TextKind.IDENTIFIER
        return functools.partial(_string, kind, MAX_CHARS.get(fd.full_name, MAX_TEXT),
                                 fd.full_name.endswith("Entry.key"))
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return functools.partial(_enum, fd.enum_type)
    if fd.type in _INT64:
        return _int64
    if fd.type in _FLOATS:
        return _finite
    if fd.message_type is not None and fd.message_type.full_name == TIMESTAMP:
        return _timestamp
    return None


def _string(kind: TextKind, limit: int, is_key: bool, value: str, path: str) -> None:
    problem = text_problem(value, kind, limit)
    if problem is not None:
        raise invalid(path, f"key {_shown(value)} {problem}" if is_key else problem)


def _shown(value: str, limit: int = 40) -> str:
    """A client's string quoted for a message: escaped and cut short."""
    text = ascii(value[:limit])
    return text + "..." if len(value) > limit else text


def _enum(enum_type, value: int, path: str) -> None:
    if value not in enum_type.values_by_number:
        names = [v.name for v in enum_type.values if v.number]
        raise invalid(
            path,
            f"{value} is not a {enum_type.name} value (known: {', '.join(names)})",
        )


def _int64(value: int, path: str) -> None:
    if value > MAX_INT64:
        raise invalid(path, f"{value} is larger than {MAX_INT64} (2^63 - 1)")


def _finite(value: float, path: str) -> None:
    if not math.isfinite(value):
        raise invalid(path, f"must be a finite number, got {value!r}")


def _timestamp(ts, path: str) -> None:
    seconds, nanos = ts.seconds, ts.nanos
    if not 0 <= nanos < 10**9:
        raise invalid(path, f"nanos {nanos} is not within 0 to 999999999")
    if EARLIEST_SECONDS <= seconds <= MAX_SECONDS:
        return
    if MIN_SECONDS <= seconds < EARLIEST_SECONDS:
        at = (EPOCH + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
        raise invalid(path, f"{at} is before {EARLIEST.date()}: instants lie in {INSTANT_RANGE}")
    raise invalid(path, f"seconds={seconds} is not an instant in {INSTANT_RANGE}")
