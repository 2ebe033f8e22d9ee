"""The one entry point to the pipeline: a directory in, a Policy (or located errors) out."""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from entitle.engine.compile import compile_policy
from entitle.engine.diagnostics import Diagnostic, PolicyError
from entitle.engine.load import Document, display_path, load_bundle_files
from entitle.engine.model import Policy
from entitle.engine.validate import validate


def _has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)


def revision_of(documents: Iterable[Document]) -> str:
    """Content hash of what the policy says (comments and layout do not change it)."""
    # Same bytes as hashing json.dumps([path, index, data], sort_keys=True) per document, in
    # one update: one encoder (json.dumps builds one per call when given sort_keys).
    encode = _ENCODER.encode
    docs = sorted(documents, key=lambda d: (d.path, d.index))
    text = "".join([encode([doc.path, doc.index, doc.data]) for doc in docs])
    return hashlib.sha256(text.encode()).hexdigest()


_ENCODER = json.JSONEncoder(sort_keys=True)


def load_documents(root: Path) -> tuple[list[Document], list[Diagnostic]]:
    """Load and validate a bundle directory."""
    if not root.is_dir():
        return [], [Diagnostic(display_path(root), 1, 1, "not a directory")]
    documents, diagnostics, files = load_bundle_files(root)
    if not files:
        diagnostics.append(Diagnostic(display_path(root), 1, 1, "no *.yaml or *.yml policy files"))
    # A file that did not load may hold what others refer to: check the rest, minus references.
    diagnostics += validate(documents, complete=not _has_errors(diagnostics))
    return documents, sorted(diagnostics)


def policy_from_documents(documents: list[Document]) -> tuple[Policy | None, list[Diagnostic]]:
    """Validate then compile documents (a bundle, or a bundle plus a suite's contracts)."""
    diagnostics = validate(documents)
    if _has_errors(diagnostics):
        return None, diagnostics
    return compile_policy(documents, revision_of(documents)), diagnostics


@contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Loading builds millions of small acyclic objects: the cyclic collector would walk the
    growing heap again and again (a third of the time for 100k contracts). Pause it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_policy(root: Path) -> tuple[Policy | None, list[Diagnostic]]:
    with _no_gc_pauses():
        documents, diagnostics = load_documents(root)
        if _has_errors(diagnostics):
            return None, diagnostics
        return compile_policy(documents, revision_of(documents)), diagnostics


def compile_or_raise(root: Path) -> Policy:
    policy, diagnostics = load_policy(root)
    if policy is None:
        raise PolicyError(diagnostics)
    return policy
