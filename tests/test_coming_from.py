"""The code pairs of docs/coming-from-tonic.md and docs/coming-from-spikingjelly.md, run as written.

Each page holds ```python blocks whose first line names their side: ``# setup`` (run before every
block of that page), ``# tonic`` / ``# spikingjelly`` (the peer's call) and ``# neurodata`` (ours,
right after the peer block it maps). Ours always runs; the peer's runs where the peer is installed
(``peer_missing`` otherwise) and both blocks' ``result`` must be equal (arrays, tensors, tuples
of them; floats to 1e-6). An HTML comment before a block changes that: ``<!-- no-test: why -->``
skips a peer block (it downloads a dataset, say); ``<!-- compare: dtype, random -->`` on ours
compares only the types and dtypes (random draws differ). Dataset blocks see ``NEURODATA_HOME``
holding the README tests' tiny prepared synthetic DVS128 Gesture cache.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import peer_missing
from test_readme_examples import neurodata_home  # noqa: F401 - the README tests' tiny dvs128 cache (a fixture)

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = {"tonic": DOCS / "coming-from-tonic.md", "spikingjelly": DOCS / "coming-from-spikingjelly.md"}
FENCE = re.compile(r"(?:<!--\s*(?P<marker>[^\n]*?)\s*-->\n)?```python\n# (?P<side>\w+)\n(?P<code>.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Block:
    """One ```python block of a page: where it starts, which side it is, its code and marker."""

    page: str
    line: int
    side: str
    code: str
    marker: str


@dataclass(frozen=True)
class Pair:
    peer: Block
    ours: Block

    @property
    def name(self) -> str:
        return f"{self.peer.page}:{self.peer.line}"


def blocks(page: str) -> list[Block]:
    text = PAGES[page].read_text(encoding="utf-8")
    return [
        Block(page, text.count("\n", 0, m.start("code")), m["side"], m["code"], m["marker"] or "")
        for m in FENCE.finditer(text)
    ]


def pairs() -> list[Pair]:
    found = []
    for page in PAGES:
        listed = [b for b in blocks(page) if b.side != "setup"]
        found += [Pair(a, b) for a, b in zip(listed, listed[1:]) if a.side == page and b.side == "neurodata"]
    return found


def setup_code(page: str) -> str:
    return "".join(b.code for b in blocks(page) if b.side == "setup")


def run(block: Block, request, monkeypatch, tmp_path):
    """Execute the page's setup and ``block``; its ``result``."""
    if "neurodata.load(" in block.code:
        monkeypatch.setenv("NEURODATA_HOME", str(request.getfixturevalue("neurodata_home")))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"coming_from_{block.page}"}
    exec(compile(setup_code(block.page) + block.code, f"{PAGES[block.page].name}:{block.line}", "exec"), namespace)  # noqa: S102
    return namespace["result"]


def plain(value):
    """Tensors (sparse too) -> numpy, tuples/lists element-wise."""
    if isinstance(value, torch.Tensor):
        value = value.to_dense() if value.is_sparse else value
        return value.detach().numpy()
    if isinstance(value, (tuple, list)):
        return tuple(plain(v) for v in value)
    return np.asarray(value)


def assert_same(ours, theirs, where: str, values: bool = True) -> None:
    if isinstance(ours, tuple):
        assert isinstance(theirs, tuple) and len(ours) == len(theirs), where
        for k, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, f"{where}[{k}]", values)
        return
    if ours.dtype.names is not None:  # records: the same fields and values (Tonic may reorder or retype them)
        assert values or ours.dtype == theirs.dtype, where
        assert sorted(ours.dtype.names) == sorted(theirs.dtype.names), where
        for name in ours.dtype.names:
            assert_same(ours[name], theirs[name].astype(ours[name].dtype), f"{where}.{name}", values)
        return
    if not values:
        assert ours.dtype == theirs.dtype, where
        return
    assert ours.shape == theirs.shape, f"{where}: {ours.shape} vs {theirs.shape}"
    if ours.dtype.kind == "f":
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6, err_msg=where)
    else:
        assert np.array_equal(ours, theirs), where


def test_pages_pair_every_peer_block():
    """Each peer block is followed by ours, and both pages map something."""
    for page in PAGES:
        listed = [b for b in blocks(page) if b.side != "setup"]
        assert {b.side for b in listed} == {page, "neurodata"}, page
        for a, b in zip(listed, listed[1:]):
            if a.side == page:
                assert b.side == "neurodata", f"{page}:{a.line}: a {page} block needs ours right after it"
    assert sum(p.peer.page == "tonic" for p in pairs()) >= 6
    assert sum(p.peer.page == "spikingjelly" for p in pairs()) >= 3


@pytest.mark.parametrize("pair", pairs(), ids=lambda p: p.name)
def test_ours_runs(pair, request, monkeypatch, tmp_path):
    result = plain(run(pair.ours, request, monkeypatch, tmp_path))
    assert all(np.size(part) for part in (result if isinstance(result, tuple) else (result,)))


@pytest.mark.parametrize(
    "pair", [p for p in pairs() if not p.peer.marker.startswith("no-test")], ids=lambda p: p.name
)
def test_peer_gives_the_same(pair, request, monkeypatch, tmp_path):
    if importlib.util.find_spec(pair.peer.page) is None:
        peer_missing(f"{pair.peer.page} is not installed (the peer environment of docs/testing.md has it)")
    theirs = plain(run(pair.peer, request, monkeypatch, tmp_path))
    ours = plain(run(pair.ours, request, monkeypatch, tmp_path))
    assert_same(ours, theirs, pair.name, values="random" not in pair.ours.marker)
