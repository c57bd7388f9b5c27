"""Public functions, methods and classes of the listed modules keep docstrings naming every parameter.

``tools/docstring_check.py`` finds the gaps; a module joins :data:`COMPLETE` once it has none, so
that the API reference (``python -m pdoc neurodata snn hw``) stays complete for it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# packages (checked recursively) and modules whose docstrings are complete
COMPLETE = [
    "neurodata",
    "snn",
    "hw",
]


def _load_checker():
    spec = importlib.util.spec_from_file_location("docstring_check", ROOT / "tools" / "docstring_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the NamedTuple it defines looks its module up
    spec.loader.exec_module(module)
    return module


checker = _load_checker()


@pytest.mark.parametrize("target", COMPLETE)
def test_docstrings_name_every_parameter(target):
    assert checker.module_files(target), f"{target}: no such module under {ROOT}"
    findings = checker.check([target])
    assert not findings, "\n".join(f"{f.module}:{f.line} {f.qualname}: {f.reason}" for f in findings)


def test_checker_finds_missing_docstrings_and_parameters(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text(
        "from dataclasses import dataclass\n"
        "def bare(a): pass\n"
        "def half(a, b, *args, **kwargs):\n"
        '    """Uses ``a``; the other is never named."""\n'
        "def whole(a, b):\n"
        '    """Adds ``a`` and b."""\n'
        "def _private(a): pass\n"
        "class Shell:\n"
        '    """A shell."""\n'
        "    def __init__(self, size): pass\n"
        "    def extra_repr(self): pass\n"
        "    def run(self, steps):\n"
        '        """Run ``steps`` steps."""\n'
        "@dataclass\n"
        "class Options:\n"
        '    """Holds ``depth``."""\n'
        "    depth: int\n"
        "    width: int\n"
    )
    found = {(f.qualname, f.reason) for f in checker.check_module("sample", source)}
    assert found == {
        ("bare", "no docstring"),
        ("half", "missing: b"),
        ("Shell", "missing: size"),
        ("Options", "missing: width"),
    }
