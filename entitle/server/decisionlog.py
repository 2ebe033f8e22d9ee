"""`--decision-log FILE`: one NDJSON line per CheckCoverage decision, for audits and replays.

Every worker process opens the same file with O_APPEND and writes each line with a single
os.write(): the kernel moves to the end of the file and writes the line in one step, so
lines of different workers never interleave on a local file system (POSIX promises this
only up to PIPE_BUF bytes for pipes; Linux ext4/xfs/btrfs hold the inode lock for the
whole write of a regular file). Do not put the log on NFS. Lines are bounded: long
subjects and attribute values are clipped (see MAX_VALUE_CHARS).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from datetime import UTC, datetime

from google.protobuf.json_format import MessageToDict

from entitle.engine.ticket import Ticket

MASK = "***"
MODE = 0o640  # a new log: owner writes, group reads; ticket data is not for everyone
MAX_VALUE_CHARS = 1000
_RESULT_FIELDS = (
    "covered", "reason", "contract_id", "plan_id", "sla_id", "sla_rule", "targets", "quota",
    "warnings",
)


def open_log(path: str) -> int:
    """A descriptor appending to `path`, created with MODE: open() would give umask's 0644."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, MODE)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _clip(value):
    if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
        return value[:MAX_VALUE_CHARS] + "..."
    return value


class DecisionLog:
    """Appends decisions to `path`; `mask_attributes` and `mask_subject` hide values."""

    def __init__(self, path: str, *, mask_attributes: Iterable[str] = (), mask_subject=False):
        self.path = path
        self.mask_attributes = frozenset(mask_attributes)
        self.mask_subject = mask_subject
        self._fd: int | None = open_log(path)
        self._lock = threading.Lock()  # close() against a write in flight

    def ticket_fields(self, ticket: Ticket) -> dict:
        attributes = {
            key: MASK if key in self.mask_attributes else _clip(value)
            for key, value in sorted(ticket.attributes.items())
        }
        subject = ticket.subject
        if subject is not None:
            subject = MASK if self.mask_subject else _clip(subject)
        return {
            "ticket_id": ticket.ticket_id,
            "customer_id": ticket.customer_id,
            "product": ticket.product,
            "priority": ticket.priority,
            "created_at": _iso(ticket.created_at),
            "subject": subject,
            "attributes": attributes,
        }

    def record(
        self,
        *,
        at: datetime,
        request_id: str | None,
        ticket: Ticket,
        decision,  # entitle.v1 Decision
        consume: bool,
        admitted: bool,
        duplicate: bool,
        latency_ms: float,
    ) -> None:
        answer = MessageToDict(
            decision, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        result = {key: answer[key] for key in _RESULT_FIELDS if key in answer}
        result["reason"] = str(result.get("reason", "")).removeprefix("COVERAGE_REASON_")
        line = {
            "time": _iso(at),
            "request_id": request_id,
            "ticket": self.ticket_fields(ticket),
            "consume": consume,
            "admitted": admitted,
            "duplicate": duplicate,
            "result": result,
            "policy_revision": decision.policy_revision,
            "latency_ms": round(latency_ms, 3),
        }
        self.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")

    def write(self, line: str) -> None:
        data = line.encode("utf-8")
        with self._lock:
            if self._fd is not None:
                os.write(self._fd, data)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
