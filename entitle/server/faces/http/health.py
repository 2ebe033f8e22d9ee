"""`GET /healthz` (the process answers) and `GET /readyz` (a valid policy is served and the
worker is not draining): for load balancers and orchestrators that probe over HTTP."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from entitle.server.runtime import Runtime


class Readiness:
    """/readyz's answer, from the served snapshot and the reloader; 503 once draining."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.draining = False

    def drain(self) -> None:
        self.draining = True

    def body(self) -> tuple[int, dict]:
        serving = self.runtime.holder.serving()
        status = self.runtime.reloader.status
        ready = serving is not None and not self.draining
        body = {
            "ready": ready,
            "policyRevision": serving.revision if serving else "",
            "lastReloadError": status.last_error or "",
            "draining": self.draining,
        }
        return (200 if ready else 503), body

    async def readyz(self, request: Request) -> JSONResponse:
        code, body = self.body()
        return JSONResponse(body, status_code=code, headers={"cache-control": "no-store"})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"live": True}, headers={"cache-control": "no-store"})
