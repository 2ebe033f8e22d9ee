"""The one entry point to the pipeline: a directory in, a Policy (or located errors) out."""

from __future__ import annotations

import gc
import hashlib
import json
import zlib
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
    if not files and not diagnostics:  # a broken entry is the cause: said once
        diagnostics.append(Diagnostic(display_path(root), 1, 1, "no *.yaml or *.yml policy files"))
    # A file that did not load may define what others refer to: those references are held back.
    unloaded = {d.path for d in diagnostics if d.severity == "error"}
    diagnostics += validate(documents, unloaded=unloaded)
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
    return compile_bundle(root)[0]


def compile_bundle(root: Path) -> tuple[Policy, list[Document]]:
    """The policy and the documents it was compiled from (what `pack_documents` keeps)."""
    with _no_gc_pauses():
        documents, diagnostics = load_documents(root)
        if _has_errors(diagnostics):
            raise PolicyError(diagnostics)
        return compile_policy(documents, revision_of(documents)), documents


def pack_documents(documents: Iterable[Document]) -> bytes:
    """A bundle as bytes to keep elsewhere: exactly what its revision hashes, compressed."""
    docs = sorted(documents, key=lambda d: (d.path, d.index))
    text = _ENCODER.encode([[doc.path, doc.index, doc.data] for doc in docs])
    return zlib.compress(text.encode(), 6)


def _unpack(blob: bytes) -> list[Document]:
    try:
        rows = json.loads(zlib.decompress(blob))
        return [Document(path, index, data) for path, index, data in rows]
    except (zlib.error, ValueError, TypeError) as exc:
        raise ValueError(f"not a packed bundle: {exc}") from None


def pack_contract_ids(blob: bytes) -> frozenset[str]:
    """The contract ids a packed bundle declares, without validating or compiling it."""
    return frozenset(
        d.data["id"] for d in _unpack(blob)
        if isinstance(d.data, dict) and d.data.get("kind") == "Contract" and "id" in d.data
    )


def policy_from_pack(blob: bytes) -> Policy:
    """The policy of a packed bundle, validated again; its revision is the original's."""
    documents = _unpack(blob)
    with _no_gc_pauses():
        policy, diagnostics = policy_from_documents(documents)
    if policy is None:
        raise PolicyError(diagnostics)
    return policy
