"""The mutation check's list stays applicable: every mutation's source text is still in the code.

Running the mutations takes minutes (``python tests/mutations.py``); this only checks that each one
would still apply, so a refactor that moves a rule updates the list in the same change."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mutations import MUTATIONS, ROOT


def test_names_are_unique_and_there_are_enough_kinds():
    names = [m.name for m in MUTATIONS]
    assert len(set(names)) == len(names)
    assert len(names) >= 23


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_mutation_still_applies(mutation):
    source = (ROOT / mutation.path).read_text()
    assert source.count(mutation.old) == mutation.count, f"{mutation.path} changed: update {mutation.name}"
    assert mutation.old != mutation.new
    for test in mutation.tests:
        assert (ROOT / test.split("::")[0]).is_file(), test
    assert Path(mutation.path).suffix == ".py"
