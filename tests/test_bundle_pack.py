"""Packed bundles (the store's accepted-bundle baseline) compile back to the same revision."""

from __future__ import annotations

from pathlib import Path

import pytest

from entitle.engine.bundle import (
    compile_bundle,
    pack_contract_ids,
    pack_documents,
    policy_from_pack,
)
from entitle.engine.diff import diff_policies

POLICIES = Path(__file__).resolve().parent.parent / "policies"


def test_a_packed_bundle_compiles_back_to_the_same_policy():
    policy, documents = compile_bundle(POLICIES)
    again = policy_from_pack(pack_documents(documents))
    assert again.revision == policy.revision
    assert sorted(again.contracts) == sorted(policy.contracts)
    assert diff_policies(policy, again) == []


def test_a_packs_contract_ids_are_read_without_compiling_it():
    policy, documents = compile_bundle(POLICIES)
    assert pack_contract_ids(pack_documents(documents)) == frozenset(policy.contracts)


def test_packing_does_not_depend_on_document_order():
    _, documents = compile_bundle(POLICIES)
    assert pack_documents(documents) == pack_documents(list(reversed(documents)))


@pytest.mark.parametrize("blob", [b"", b"not zlib", b"x\x9c\x03\x00\x00\x00\x00\x01"])
def test_a_damaged_pack_is_refused(blob):
    with pytest.raises(ValueError, match="not a packed bundle"):
        policy_from_pack(blob)
