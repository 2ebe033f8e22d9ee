"""HTTP credentials for the shared tokens and roles: `Bearer TOKEN`, or Basic with the token
as the password (help desks such as Zendesk and ServiceNow offer Basic, not Bearer)."""

from __future__ import annotations

import base64
import binascii

from entitle.server.service.access import TokenFile, bearer, denial
from entitle.server.service.failures import Code, Failure

# Sent with every 401: both forms are accepted.
WWW_AUTHENTICATE = 'Bearer realm="entitle", Basic realm="entitle"'


def token_of(authorization: str | None) -> str | None:
    """The token of an Authorization header value (Bearer, or Basic's password), or None."""
    if not authorization:
        return None
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return bearer((("authorization", authorization),))
    try:
        decoded = base64.b64decode(rest.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _user, sep, password = decoded.partition(":")
    return password if sep and password else None


def http_denial(tokens: TokenFile | None, method: str, authorization: str | None) -> Failure | None:
    """Why a call of `method` with this Authorization header is refused, or None; the same
    rules and messages as gRPC, with the HTTP forms named in the missing-token message."""
    failure = denial(tokens, method, token_of(authorization))
    if failure is not None and failure.code is Code.UNAUTHENTICATED and not authorization:
        return Failure(
            Code.UNAUTHENTICATED,
            "missing token: send `Authorization: Bearer <token>` "
            "(or HTTP Basic with the token as the password)",
        )
    return failure
