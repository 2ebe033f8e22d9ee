"""Opaque page tokens: where a listing stopped, bound to the filters that produced it."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_TOKEN_CHARS = 1024


class PageTokenError(ValueError):
    """The token is not one this server issued for these filters."""


def query_fingerprint(*filters: object) -> str:
    """Short hash of a listing's filters; a token only continues the listing it came from."""
    text = json.dumps([str(f) for f in filters])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_page_token(after: str, query: str) -> str:
    """Token for the page that starts after the item keyed `after` (keyset: stable on reload)."""
    raw = json.dumps({"a": after, "q": query}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, query: str) -> str | None:
    """The key to continue after, or None for the first page; raises PageTokenError."""
    if not token:
        return None
    if len(token) > MAX_TOKEN_CHARS:
        raise PageTokenError("is too long to be a page token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        obj = json.loads(raw)
    except (binascii.Error, ValueError):
        raise PageTokenError("is not a page token this server issued") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("a"), str):
        raise PageTokenError("is not a page token this server issued")
    if obj.get("q") != query:
        raise PageTokenError("belongs to a listing with different filters")
    return obj["a"]


def page_size(requested: int) -> int:
    """The page size to use: 0 means the default; larger than the maximum is clamped."""
    if requested < 0:
        raise ValueError("must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
