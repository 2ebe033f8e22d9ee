"""The gRPC face's half of failures: codes as grpc.StatusCode, the field as trailing metadata."""

from __future__ import annotations

import re

import grpc

from entitle.server.service.failures import Code, Failure

FIELD_METADATA = "entitle-field"  # trailing metadata naming the offending request field
MAX_METADATA_CHARS = 1024
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
GRPC_CODES = {code: grpc.StatusCode[code.name] for code in Code}


def metadata_text(text: str) -> str:
    """Text fit for an ASCII metadata value: one line, printable, bounded."""
    one_line = " | ".join(part.strip() for part in text.splitlines() if part.strip())
    return _UNPRINTABLE.sub("?", one_line)[:MAX_METADATA_CHARS]


def abort(context: grpc.ServicerContext, failure: Failure) -> None:
    """End the call with the failure's status (raises, as context.abort does)."""
    if failure.field:
        context.set_trailing_metadata(((FIELD_METADATA, metadata_text(failure.field)),))
    context.abort(GRPC_CODES[failure.code], failure.message)
