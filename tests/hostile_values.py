"""Hostile values for every field of every request message, derived from the descriptors
(shared by the hostile-request tests; no tests here). A field added to the proto gets
hostile values without a change here; a few seed values per field name (known customers,
contracts, units) let generated requests reach past the first check into the store."""

from __future__ import annotations

import json
from pathlib import Path

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st
from test_server_harness import NOW

from entitle.server.service.calls import SERVICE
from entitle.server.service.wire import MAX_SECONDS, MIN_SECONDS, timestamp

NOW_SECONDS = timestamp(NOW).seconds
# Requests each call accepts (by method name): spoilt one field at a time.
ACCEPTED = json.loads(
    (Path(__file__).resolve().parent / "fixtures" / "hostile" / "requests.json").read_text()
)
EARLIEST_SECONDS = 946684800  # 2000-01-01T00:00:00Z
TIMESTAMP = Timestamp.DESCRIPTOR.full_name

# Values that reach into the calls, by field name; everything else is generic.
SEEDS: dict[str, tuple[str, ...]] = {
    "ticket_id": ("T-1", "T-2", "T-3"),
    "customer_id": ("globex", "acme", "initech"),
    "product": ("mail", "sync", "edge-weekly", "edge-monthly"),
    "priority": ("low", "high", "urgent"),
    "contract_id": (
        "globex-mail-pack", "acme-hours", "initech-weekly-east", "initech-monthly-west",
        "initech-quarterly-anniversary", "initech-yearly-anniversary",
    ),
    "plan_id": ("weekly-100", "premium-monthly", "hours-pack-50"),
    "unit": ("incidents", "hours"),
    "idempotency_key": ("K-1", "K-2"),
    "reason": ("merged into T-9",),
    "subject": ("Mail is down",),
    "string_value": ("gold",),
    "key": ("tier", "license_count"),
    "id": ("E-1", "E-2"),
    "type": ("agent_reply", "status_changed", "customer_message", "priority_changed",
             "resolved", "reopened"),
    "status": ("pending", "open", "on_hold"),
}
HOSTILE_STRINGS = (
    "", " ", "x" * 1025, "y" * 16385, "a\x00b", "\x00", "\x01", "tab\there", "two\nlines",
    "cr\r", "\x7f", "\x85", "\x9f", "\u2028", "\u202eevil", "\ufeff", "\u200d", "\U0010ffff",
    "\ufffe", "💥", "ticket' OR '1'='1", "%s%n", "?", "\\", "😀" * 600,
)
CONTROLS = st.sampled_from(["\x00", "\x07", "\x1b", "\x7f", "\x80", "\x9f", "\t", "\n", "\r"])
SECONDS = (
    NOW_SECONDS, NOW_SECONDS - 30 * 86400, NOW_SECONDS + 86400, NOW_SECONDS + 86401,
    EARLIEST_SECONDS, EARLIEST_SECONDS - 1, MIN_SECONDS, MIN_SECONDS - 1, MAX_SECONDS,
    MAX_SECONDS + 1, 0, -(2**63), 2**63 - 1,
)
NANOS = (0, 1, 999_999_999, 10**9, -1, 2**31 - 1, -(2**31))
DOUBLES = (
    0.0, -0.0, 1.0, 0.5, 1e6, 1e6 + 1, 1e15, 1e16, 1e308, -1e308, 5e-324, -1.0,
    float("nan"), float("inf"), float("-inf"),
)
INT32 = (0, 1, -1, 1000, 1001, 2**31 - 1, -(2**31))
UINT64 = (0, 1, 2**63 - 1, 2**63, 2**64 - 1)

_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: st.sampled_from(DOUBLES) | st.floats(),
    FieldDescriptor.TYPE_FLOAT: st.sampled_from(DOUBLES) | st.floats(width=32),
    FieldDescriptor.TYPE_INT32: st.sampled_from(INT32) | st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT64: st.sampled_from(UINT64) | st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
}

timestamps = st.builds(
    Timestamp,
    seconds=st.sampled_from(SECONDS) | st.integers(MIN_SECONDS, MAX_SECONDS),
    nanos=st.sampled_from(NANOS),
)


def strings(name: str) -> st.SearchStrategy[str]:
    """Seed values, hostile ones, seeds with a control character inside, any text."""
    seeds = SEEDS.get(name, ("x",))
    return st.one_of(
        st.sampled_from(seeds),
        st.sampled_from(HOSTILE_STRINGS),
        st.builds(lambda s, c, i: s[:i] + c + s[i:], st.sampled_from(seeds), CONTROLS,
                  st.integers(0, 8)),
        st.text(max_size=30),
    )


_SEED_SCALARS = {
    FieldDescriptor.TYPE_DOUBLE: st.sampled_from((1.0, 2.5, 50.0)),
    FieldDescriptor.TYPE_FLOAT: st.sampled_from((1.0, 2.5)),
    FieldDescriptor.TYPE_INT32: st.sampled_from((0, 2, 10)),
    FieldDescriptor.TYPE_UINT64: st.sampled_from((0, 1, 3)),
    FieldDescriptor.TYPE_INT64: st.sampled_from((0, 1)),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
}
seed_timestamps = st.builds(
    Timestamp, seconds=st.integers(NOW_SECONDS - 200 * 86400, NOW_SECONDS), nanos=st.just(0)
)


def _value(fd: FieldDescriptor, seeded: bool) -> st.SearchStrategy:
    """Values of one field: hostile ones, or (seeded) ones a call accepts, mostly."""
    if seeded:
        return _seed(fd) if fd.type != FieldDescriptor.TYPE_MESSAGE else _value(fd, False)
    if fd.type == FieldDescriptor.TYPE_STRING:
        return strings(fd.name)
    if fd.type == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in fd.enum_type.values]
        return st.sampled_from(known) | st.sampled_from([-1, 99, 2**31 - 1])
    if fd.message_type is not None:
        if fd.message_type.full_name == TIMESTAMP:
            return timestamps
        return messages(fd.message_type)
    if fd.type in _SCALARS:
        return _SCALARS[fd.type]
    raise NotImplementedError(f"no hostile values for {fd.full_name} (type {fd.type})")


def _seed(fd: FieldDescriptor) -> st.SearchStrategy:
    if fd.type == FieldDescriptor.TYPE_STRING:
        return st.sampled_from(SEEDS.get(fd.name, ("x",)))
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in fd.enum_type.values if v.number])
    return _SEED_SCALARS[fd.type]


def _is_map(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry


@st.composite
def _message(draw, descriptor: Descriptor, seeded: bool) -> Message:
    """Each field unset, hostile or seeded; seeded messages are mostly seeds, so that many
    reach past the first check, and hostile values come one or two at a time."""
    msg = message_factory.GetMessageClass(descriptor)()
    for fd in descriptor.fields:
        roll = draw(st.integers(0, 9))
        if roll < (1 if seeded else 3):
            continue  # unset: the default
        own = seeded and roll < 9  # a seeded message's field: hostile one time in ten
        if fd.message_type is not None and fd.message_type.full_name == TIMESTAMP:
            ts = draw(seed_timestamps if own else timestamps)
            getattr(msg, fd.name).CopyFrom(ts)
        elif _is_map(fd):
            key_fd = fd.message_type.fields_by_name["key"]
            value_fd = fd.message_type.fields_by_name["value"]
            values = (messages(value_fd.message_type, own) if value_fd.message_type is not None
                      else _value(value_fd, own))
            entries = draw(st.dictionaries(_value(key_fd, own), values, max_size=3))
            target = getattr(msg, fd.name)
            for key, value in entries.items():
                if value_fd.message_type is not None:
                    target[key].CopyFrom(value)
                else:
                    target[key] = value
        elif fd.message_type is not None and fd.is_repeated:
            for item in draw(st.lists(messages(fd.message_type, own), max_size=3)):
                getattr(msg, fd.name).add().CopyFrom(item)
        elif fd.message_type is not None:
            getattr(msg, fd.name).CopyFrom(draw(messages(fd.message_type, own)))
        elif fd.is_repeated:
            getattr(msg, fd.name).extend(draw(st.lists(_value(fd, own), max_size=3)))
        else:
            setattr(msg, fd.name, draw(_value(fd, own)))
    return msg


def messages(descriptor: Descriptor, seeded: bool = False) -> st.SearchStrategy[Message]:
    return st.deferred(lambda: _message(descriptor, seeded))


def _mutate(draw, msg: Message) -> None:
    """One field of `msg`, at any depth, given a hostile value (a map: key or value)."""
    descriptor = msg.DESCRIPTOR
    fd = draw(st.sampled_from(list(descriptor.fields)))
    if _is_map(fd):
        value_fd = fd.message_type.fields_by_name["value"]
        target = getattr(msg, fd.name)
        if draw(st.booleans()):  # a hostile key, with a value a call accepts
            key = draw(_value(fd.message_type.fields_by_name["key"], False))
            value = draw(messages(value_fd.message_type, True))
            target[key].CopyFrom(value)
        else:
            key = draw(_seed(fd.message_type.fields_by_name["key"]))
            _mutate(draw, target[key])
    elif fd.message_type is not None and fd.is_repeated:
        items = getattr(msg, fd.name)
        if items and draw(st.booleans()):
            _mutate(draw, items[draw(st.integers(0, len(items) - 1))])
        else:
            items.add().CopyFrom(draw(messages(fd.message_type, False)))
    elif fd.message_type is not None and fd.message_type.full_name != TIMESTAMP:
        _mutate(draw, getattr(msg, fd.name))
    elif fd.message_type is not None:
        getattr(msg, fd.name).CopyFrom(draw(timestamps))
    elif fd.is_repeated:
        getattr(msg, fd.name).extend(draw(st.lists(_value(fd, False), min_size=1, max_size=3)))
    else:
        setattr(msg, fd.name, draw(_value(fd, False)))


def accepted(method) -> st.SearchStrategy[Message]:
    """A request the call accepts: from the fixture, else built from seed values."""
    known = ACCEPTED.get(method.name)
    if not known:
        return messages(method.input_type, True)
    cls = message_factory.GetMessageClass(method.input_type)
    return st.sampled_from(known).map(lambda obj: json_format.ParseDict(obj, cls()))


@st.composite
def _one_mistake(draw, method) -> Message:
    msg = draw(accepted(method))
    if method.input_type.fields:
        _mutate(draw, msg)
    return msg


def requests() -> st.SearchStrategy[tuple[object, Message]]:
    """(method descriptor, request) over every method of the service: requests a call
    accepts but for one hostile value (the likeliest to reach deep), accepted ones (they
    build the ledger and the clocks the others meet), seeded ones with a few hostile values,
    and wholly hostile ones."""
    return st.one_of(*(
        st.tuples(st.just(method), st.one_of(
            _one_mistake(method),
            accepted(method),
            messages(method.input_type, True),
            messages(method.input_type, False),
        ))
        for method in SERVICE.methods
    ))


@st.composite
def _spoilt(draw, request: Message) -> bytes:
    """The request's wire bytes, cut, or with bytes replaced or inserted (bad UTF-8 in a
    string, a wire type that does not match, a length past the end)."""
    data = bytearray(request.SerializeToString())
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        how = draw(st.sampled_from(("cut", "replace", "insert")))
        if how == "cut":
            del data[at:]
        elif how == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        else:
            data[at:at] = draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc0\x80",
                                                b"\x0a\x7f", b"\x80"]))
    return bytes(data)


def raw_requests() -> st.SearchStrategy[tuple[object, bytes]]:
    """(method descriptor, bytes): requests spoilt on the wire, where only bytes can go."""
    return requests().flatmap(lambda pair: st.tuples(st.just(pair[0]), _spoilt(pair[1])))


def string_paths(descriptor: Descriptor, prefix: str = "") -> list[tuple[str, list]]:
    """Every string field a request holds: (the path errors name, the attribute path to it)
    with maps entered through one entry keyed `k`, repeated messages through item 0."""
    out = []
    for fd in descriptor.fields:
        path = prefix + fd.name
        if _is_map(fd):
            value_type = fd.message_type.fields_by_name["value"].message_type
            if value_type is not None:
                for _, inner in string_paths(value_type):
                    out.append((f"{path}.k", [fd.name, "k", *inner]))
        elif fd.type == FieldDescriptor.TYPE_STRING:
            out.append((path, [fd.name]))
        elif fd.message_type is not None and fd.is_repeated:
            for sub, inner in string_paths(fd.message_type, path + "[0]."):
                out.append((sub, [fd.name, 0, *inner]))
        elif fd.message_type is not None and fd.message_type.full_name != TIMESTAMP:
            for sub, inner in string_paths(fd.message_type, path + "."):
                out.append((sub, [fd.name, *inner]))
    return out
