"""The one entry point to the pipeline: a directory in, a Policy (or located errors) out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
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
    digest = hashlib.sha256()
    for doc in sorted(documents, key=lambda d: (d.path, d.index)):
        digest.update(json.dumps([doc.path, doc.index, doc.data], sort_keys=True).encode())
    return digest.hexdigest()


def load_documents(root: Path) -> tuple[list[Document], list[Diagnostic]]:
    """Load and validate a bundle directory."""
    if not root.is_dir():
        return [], [Diagnostic(display_path(root), 1, 1, "not a directory")]
    documents, diagnostics, files = load_bundle_files(root)
    if not files:
        diagnostics.append(Diagnostic(display_path(root), 1, 1, "no *.yaml or *.yml policy files"))
    if not _has_errors(diagnostics):
        diagnostics += validate(documents)
    return documents, sorted(diagnostics)


def policy_from_documents(documents: list[Document]) -> tuple[Policy | None, list[Diagnostic]]:
    """Validate then compile documents (a bundle, or a bundle plus a suite's contracts)."""
    diagnostics = validate(documents)
    if _has_errors(diagnostics):
        return None, diagnostics
    return compile_policy(documents, revision_of(documents)), diagnostics


def load_policy(root: Path) -> tuple[Policy | None, list[Diagnostic]]:
    documents, diagnostics = load_documents(root)
    if _has_errors(diagnostics):
        return None, diagnostics
    return compile_policy(documents, revision_of(documents)), diagnostics


def compile_or_raise(root: Path) -> Policy:
    policy, diagnostics = load_policy(root)
    if policy is None:
        raise PolicyError(diagnostics)
    return policy
