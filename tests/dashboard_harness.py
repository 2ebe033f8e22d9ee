"""Shared by the dashboard tests (no tests here): a worker whose HTTP listener has the
dashboard mounted, on real ports."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from test_server_harness import InProcess, in_process, make_bundle

from entitle.server.faces.dashboard import MOUNT_PATH

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "dashboard"
VIEWER, CHECKER = "viewer-token-0123456789", "checker-token-0123456789"


def dashboard_bundle(root: Path) -> Path:
    """The server tests' bundle plus the dashboard's contracts (a hostile customer id)."""
    bundle = make_bundle(root)
    shutil.copy(FIXTURES / "contracts.yaml", bundle / "contracts" / "dashboard-tests.yaml")
    return bundle


def tokens_file(root: Path) -> Path:
    path = root / "tokens"
    path.write_text(f"{VIEWER} viewer\n{CHECKER} checker\n")
    return path


@dataclass
class Served:
    worker: InProcess
    url: str  # the dashboard's base URL, e.g. http://127.0.0.1:PORT/dashboard
    bundle: Path

    @property
    def origin(self) -> str:
        return self.worker.base_url


@contextlib.contextmanager
def served_dashboard(root: Path, store_url: str, *, tokens: bool = True,
                     config: dict | None = None,
                     prepare: Callable[[Path], None] | None = None) -> Iterator[Served]:
    """A worker (fixed clock) with gRPC and HTTP listeners; the dashboard at /dashboard.
    `prepare(bundle)` may change the bundle before the worker starts."""
    bundle = dashboard_bundle(root)
    if prepare is not None:
        prepare(bundle)
    options = dict(config or {})
    if tokens:
        options["tokens_file"] = str(tokens_file(root))
    with in_process(bundle, store_url, config=options, http=True) as worker:
        yield Served(worker, worker.base_url + MOUNT_PATH, bundle)
