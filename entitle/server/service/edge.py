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
from dataclasses import dataclass
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

# One value's problem in words, or None: (value) -> str | None. Paths are built only for
# the value at fault, so a request that passes costs one look at each set field.
Check = Callable[[object], str | None]


@dataclass(frozen=True)
class _Field:
    """How the walk treats one field: its check, or the message or map to descend into."""

    name: str
    check: Check | None  # scalars, Timestamps; None for messages and maps
    repeated: bool
    entry_of_map: bool  # a oneof member of a map's value message: named by the entry's key
    key_check: Check | None = None  # maps only
    value_check: Check | None = None  # maps of scalars only


def check_request(message: Message) -> None:
    """Raise INVALID_ARGUMENT naming the first field whose value no call accepts."""
    _check_message(message, "", in_map_value=False)


def _check_message(message: Message, prefix: str, *, in_map_value: bool) -> None:
    plan = _plan(message.DESCRIPTOR)
    for fd, value in message.ListFields():  # set fields only: defaults are always accepted
        field = plan[fd.number]
        check = field.check
        if check is not None:
            for item in value if field.repeated else (value,):
                problem = check(item)
                if problem is not None:
                    raise invalid(_path(prefix, field, in_map_value), problem)
        elif field.key_check is not None:
            _check_map(field, value, prefix + field.name)
        elif field.repeated:  # messages, named by index: `ticket.events[3].at`
            for i, item in enumerate(value):
                _check_message(item, f"{prefix}{field.name}[{i}].", in_map_value=False)
        else:
            _check_message(value, prefix + field.name + ".", in_map_value=False)


def _path(prefix: str, field: _Field, in_map_value: bool) -> str:
    # A map value's oneof member is the entry itself: `ticket.attributes.tier`.
    return prefix[:-1] if in_map_value and field.entry_of_map else prefix + field.name


def _check_map(field: _Field, entries, path: str) -> None:
    for key in entries:
        problem = field.key_check(key)
        if problem is not None:  # a bad key cannot name its entry: the map is at fault
            raise invalid(path, f"key {_shown(key)} {problem}")
        value = entries[key]
        if field.value_check is None:
            _check_message(value, f"{path}.{key}.", in_map_value=True)
        elif (problem := field.value_check(value)) is not None:
            raise invalid(f"{path}.{key}", problem)


@functools.cache
def _plan(descriptor: Descriptor) -> dict[int, _Field]:
    """Per field number, how to walk it (computed once per message type)."""
    out = {}
    for fd in descriptor.fields:
        entry = fd.message_type
        if entry is not None and entry.GetOptions().map_entry:
            key_fd, value_fd = entry.fields_by_name["key"], entry.fields_by_name["value"]
            out[fd.number] = _Field(
                fd.name, None, False, False,
                key_check=_check_for(key_fd) or _accept,
                value_check=_check_for(value_fd),
            )
        else:
            out[fd.number] = _Field(
                fd.name, _check_for(fd), fd.is_repeated, fd.containing_oneof is not None
            )
    return out


def _accept(value: object) -> None:
    return None


def _check_for(fd: FieldDescriptor) -> Check | None:
    if fd.type == FieldDescriptor.TYPE_STRING:
        kind = TextKind.FREE_TEXT if fd.full_name in FREE_TEXT else TextKind.IDENTIFIER
        return functools.partial(text_problem, kind=kind,
                                 limit=MAX_CHARS.get(fd.full_name, MAX_TEXT))
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return functools.partial(_enum, fd.enum_type)
    if fd.type in _INT64:
        return _int64
    if fd.type in _FLOATS:
        return _finite
    if fd.message_type is not None and fd.message_type.full_name == TIMESTAMP:
        return _timestamp
    if fd.type == FieldDescriptor.TYPE_MESSAGE:
        return None  # walked
    return _accept  # bool, int32 (their rules belong to their calls)


def _shown(value: str, limit: int = 40) -> str:
    """A client's string quoted for a message: escaped and cut short."""
    text = ascii(value[:limit])
    return text + "..." if len(value) > limit else text


def _enum(enum_type, value: int) -> str | None:
    if value in enum_type.values_by_number:
        return None
    names = ", ".join(v.name for v in enum_type.values if v.number)
    return f"{value} is not a {enum_type.name} value (known: {names})"


def _int64(value: int) -> str | None:
    return f"{value} is larger than {MAX_INT64} (2^63 - 1)" if value > MAX_INT64 else None


def _finite(value: float) -> str | None:
    return None if math.isfinite(value) else f"must be a finite number, got {value!r}"


def _timestamp(ts) -> str | None:
    seconds, nanos = ts.seconds, ts.nanos
    if not 0 <= nanos < 10**9:
        return f"nanos {nanos} is not within 0 to 999999999"
    if EARLIEST_SECONDS <= seconds <= MAX_SECONDS:
        return None
    if MIN_SECONDS <= seconds < EARLIEST_SECONDS:
        at = (EPOCH + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
        return f"{at} is before {EARLIEST.date()}: instants lie in {INSTANT_RANGE}"
    return f"seconds={seconds} is not an instant in {INSTANT_RANGE}"
