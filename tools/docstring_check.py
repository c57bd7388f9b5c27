"""List public functions and methods whose docstring is missing or leaves a parameter unnamed.

Run from the repository root: ``python tools/docstring_check.py [PACKAGE_OR_MODULE ...]``.
Without arguments it checks every module under ``neurodata``, ``snn`` and ``hw`` (the command line
in ``cli`` documents itself through ``--help``). It prints one line per finding,
``module:line qualname: reason``, then a count, and exits 1 when anything was found.

Public means no leading underscore on the module path, the class or the function. A parameter
counts as named when its name appears as a word in the docstring; ``self``, ``cls``, ``*args``
and ``**kwargs`` need no mention, nor does torch's ``extra_repr`` hook. A class is checked through its ``__init__`` (the docstring of
the class or of ``__init__`` may name the parameters); dataclasses and NamedTuples are checked
field by field against the class docstring.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PACKAGES = ("neurodata", "snn", "hw")
_SKIPPED_PARAMS = frozenset({"self", "cls"})
# torch's hook for ``repr(module)``: every module overrides it, and its meaning never changes
_HOOKS = frozenset({"extra_repr"})


class Finding(NamedTuple):
    """One public callable whose docstring is incomplete.

    Attributes:
        module: Dotted module name, e.g. ``neurodata.reader``.
        line: Line of the ``def`` or ``class`` statement.
        qualname: ``function``, ``Class.method`` or ``Class`` (its constructor or fields).
        reason: ``no docstring`` or ``missing: a, b``.
    """

    module: str
    line: int
    qualname: str
    reason: str


def module_files(target: str) -> list[tuple[str, Path]]:
    """Return ``(module name, file)`` for a package (recursively) or a single module.

    Args:
        target: Dotted name of a package or module under the repository root.
    """
    path = ROOT.joinpath(*target.split("."))
    if path.with_suffix(".py").is_file():
        return [(target, path.with_suffix(".py"))]
    found = []
    for file in sorted(path.rglob("*.py")):
        parts = file.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(part.startswith("_") for part in parts):
            continue
        found.append((".".join(parts), file))
    return found


def _mentions(doc: str, name: str) -> bool:
    return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", doc) is not None


def _parameters(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = func.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    return [n for n in names if n not in _SKIPPED_PARAMS and not n.startswith("_")]


def _decorators(node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set()
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        names.add(ast.unparse(target).rsplit(".", 1)[-1])
    return names


def _is_record(node: ast.ClassDef) -> bool:
    """True for dataclasses and NamedTuples, whose fields are their constructor's parameters."""
    bases = {ast.unparse(b).rsplit(".", 1)[-1] for b in node.bases}
    return "dataclass" in _decorators(node) or "NamedTuple" in bases


def _fields(node: ast.ClassDef) -> list[str]:
    return [
        s.target.id
        for s in node.body
        if isinstance(s, ast.AnnAssign)
        and isinstance(s.target, ast.Name)
        and not s.target.id.startswith("_")
        and "ClassVar" not in ast.unparse(s.annotation)
    ]


def _check(module: str, line: int, qualname: str, doc: str | None, params: list[str]) -> Finding | None:
    if not doc:
        return Finding(module, line, qualname, "no docstring")
    missing = [p for p in params if not _mentions(doc, p)]
    return Finding(module, line, qualname, "missing: " + ", ".join(missing)) if missing else None


def _check_function(module: str, func: ast.FunctionDef | ast.AsyncFunctionDef, prefix: str) -> Finding | None:
    if "overload" in _decorators(func):
        return None
    return _check(module, func.lineno, prefix + func.name, ast.get_docstring(func), _parameters(func))


def _check_class(module: str, node: ast.ClassDef) -> list[Finding]:
    class_doc = ast.get_docstring(node) or ""
    findings: list[Finding | None] = []
    methods = {s.name: s for s in node.body if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)}
    init = methods.get("__init__")
    if init is not None:
        doc = "\n".join(filter(None, (class_doc, ast.get_docstring(init))))
        findings.append(_check(module, node.lineno, node.name, doc, _parameters(init)))
    elif _is_record(node):
        findings.append(_check(module, node.lineno, node.name, class_doc, _fields(node)))
    elif not class_doc:
        findings.append(Finding(module, node.lineno, node.name, "no docstring"))
    for name, method in methods.items():
        if name.startswith("_") or name in _HOOKS:
            continue
        findings.append(_check_function(module, method, node.name + "."))
    return [f for f in findings if f is not None]


def check_module(module: str, file: Path) -> list[Finding]:
    """Return the findings of one module's top-level functions and classes.

    Args:
        module: Dotted module name used in the findings.
        file: The module's source file.
    """
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    findings: list[Finding] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_"):
            found = _check_function(module, node, "")
            findings.extend([found] if found else [])
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            findings.extend(_check_class(module, node))
    return findings


def check(targets: list[str]) -> list[Finding]:
    """Return the findings of every public module under the given packages or modules.

    Args:
        targets: Dotted package or module names.
    """
    return [f for t in targets for name, file in module_files(t) for f in check_module(name, file)]


def main(argv: list[str]) -> int:
    """Print the findings and return the exit status (1 when any were found).

    Args:
        argv: Package or module names; empty checks ``neurodata``, ``snn`` and ``hw``.
    """
    findings = check(argv or list(DEFAULT_PACKAGES))
    for f in findings:
        print(f"{f.module}:{f.line} {f.qualname}: {f.reason}")
    print(f"{len(findings)} incomplete docstrings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
