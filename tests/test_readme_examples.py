"""The README's Python examples, run as written, in order, in one namespace (later examples continue
earlier ones, as a reader's session would), in a scratch folder with ``NEURODATA_HOME`` holding a tiny
prepared synthetic DVS128 Gesture cache (``neurodata.sim.gestures``).

Markers, an HTML comment on the line before a block's opening fence:

* ``<!-- no-test: why -->`` skips the block (it needs what a test cannot have offline: the reader's
  own recordings, a bucket);
* ``<!-- test: `OLD` -> `NEW`, ... (why) -->`` runs the block with each text ``OLD`` replaced by
  ``NEW`` (only sizes, such as the number of epochs or channels: what runs is otherwise the block as
  written).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from neurodata.datasets.prepare import prepare
from neurodata.sim.gestures import write_archive

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"(?:<!--\s*(?P<marker>[^\n]*?)\s*-->\n)?```python\n(?P<code>.*?)```", re.DOTALL)
REPLACE = re.compile(r"`(?P<old>[^`]+)`\s*->\s*`(?P<new>[^`]+)`")


@dataclass(frozen=True)
class Example:
    """One ```python block of the README: its first line number, its code and its marker."""

    line: int
    code: str
    marker: str | None

    @property
    def skipped(self) -> bool:
        return bool(self.marker) and self.marker.startswith("no-test:")

    def runnable(self) -> str:
        """The code to run, with a ``test:`` marker's replacements applied (each must match)."""
        if not self.marker:
            return self.code
        pairs = REPLACE.findall(self.marker)
        if not self.marker.startswith("test:") or not pairs:
            raise AssertionError(f"README.md:{self.line}: unknown marker <!-- {self.marker} -->")
        code = self.code
        for old, new in pairs:
            assert old in code, f"README.md:{self.line}: {old!r} is not in the block"
            code = code.replace(old, new)
        return code


def examples() -> list[Example]:
    text = README.read_text()
    return [
        Example(text.count("\n", 0, m.start("code")) + 1, m["code"], m["marker"]) for m in FENCE.finditer(text)
    ]


@pytest.fixture(scope="module")
def neurodata_home(tmp_path_factory):
    """A tiny dvs128 cache (2 users: 1 train, 1 test; 1 lighting; 11 gestures of 0.2 s)."""
    root = tmp_path_factory.mktemp("readme-home")
    archive = write_archive(
        tmp_path_factory.mktemp("readme-archive") / "tiny-gestures.tar.gz",
        n_users=2,
        n_test_users=1,
        lightings=("led",),
        gesture_us=200_000,
        frame_us=10_000,
        scene="blobs",
    )
    prepare("dvs128", source=str(archive), root=root, progress=False)
    return root


def test_markers_are_few_and_explained():
    found = examples()
    assert len(found) >= 5
    skipped = [e for e in found if e.skipped]
    assert len(skipped) <= 2, [e.line for e in skipped]
    assert all(len(e.marker) > len("no-test: ") + 5 for e in skipped), "say why a block is skipped"


def test_readme_examples_run_as_written(neurodata_home, tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODATA_HOME", str(neurodata_home))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    ran = 0
    for example in examples():
        if example.skipped:
            continue
        code = compile(example.runnable(), f"README.md:{example.line}", "exec")
        exec(code, namespace)  # noqa: S102 - the README's own examples
        ran += 1
    assert ran >= 4
    # the training example saw [T, B, ...] batches as such: its run finished and kept a best model
    assert (tmp_path / "runs" / "dvs128" / "best.pt").is_file()
    assert namespace["result"].history[-1]["train_loss"] > 0
