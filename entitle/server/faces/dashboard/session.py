"""Who is looking: the dashboard's login cookie and its guard against cross-site requests.

With a tokens file, the login form takes a token of any role (viewer or higher) and keeps it
in a cookie that scripts cannot read (`HttpOnly`), that no other site's page sends
(`SameSite=Strict`) and, under TLS, that travels only over TLS (`Secure`). Every request
checks the token against the tokens file again, so a token removed from the file logs its
sessions out at once. Without a tokens file the dashboard is open, like the API.

Cross-site request forgery: every POST must come from a page of this origin: `Origin` (or,
when a browser sends none, `Referer`) must name the request's own scheme, host and port.
Together with `SameSite=Strict` a form on another site can neither log someone in nor ask
anything in their name.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from entitle.server.service.access import ROLES, TokenFile, allows

COOKIE = "entitle_session"
NEEDED_ROLE = "viewer"
COOKIE_SECONDS = 12 * 3600  # a session lasts a working day; log in again after


def role_of(tokens: TokenFile | None, request: Request) -> str | None:
    """The session's role; `admin` when the dashboard is open; None when not logged in."""
    if tokens is None:
        return ROLES[-1]
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    role = tokens.current().role_of(token)
    return role if role is not None and allows(role, NEEDED_ROLE) else None


def start_session(response: Response, token: str, *, path: str, secure: bool) -> None:
    response.set_cookie(
        COOKIE, token, max_age=COOKIE_SECONDS, path=path or "/", httponly=True,
        samesite="strict", secure=secure,
    )


def end_session(response: Response, *, path: str, secure: bool) -> None:
    response.delete_cookie(COOKIE, path=path or "/", httponly=True, samesite="strict",
                           secure=secure)


def _origin(url: str) -> tuple[str, str] | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return parts.scheme.lower(), parts.netloc.lower()


def same_origin(request: Request) -> bool:
    """True when a POST comes from a page of this dashboard's own origin."""
    own = (request.url.scheme.lower(), request.url.netloc.lower())
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return _origin(origin) == own
    referer = request.headers.get("referer")
    return bool(referer) and _origin(referer) == own


def safe_next(target: str, base: str) -> str:
    """Where to go after logging in: a path of this dashboard, never another site."""
    home = f"{base}/"
    if not target or not target.startswith(home) or target.startswith("//"):
        return home
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return home
    return target
