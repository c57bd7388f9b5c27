"""The wheel as a user installs it: its packages, its entry point, and dependencies that match its imports.

The wheel is built offline from a copy of the tree (``pip wheel --no-build-isolation``, with the
setuptools of this environment), so the source folder gets no ``build/`` or ``*.egg-info``.
"""

from __future__ import annotations

import ast
import email
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
OWN_PACKAGES = {"neurodata", "snn", "hw"}
SOURCE_FOLDERS = {"neurodata": "neurodata", "snn": "snn", "hw": "hw", "neurodata/cli": "cli"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built from a copy of the sources."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in set(SOURCE_FOLDERS.values()):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    result = subprocess.run([*command, "-q", "-w", str(out), str(src)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("neurodata-*.whl")
    return built


def wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as z:
        return {name: z.read(name) for name in z.namelist()}


def dist_info(files: dict[str, bytes], name: str) -> str:
    (key,) = [k for k in files if re.fullmatch(rf"neurodata-[^/]+\.dist-info/{name}", k)]
    return files[key].decode()


def test_wheel_holds_exactly_the_project_packages(wheel):
    files = wheel_files(wheel)
    top = {name.split("/")[0] for name in files if ".dist-info/" not in name}
    assert top == OWN_PACKAGES, "the wheel must install neurodata, snn and hw only (no cli, tests, benchmarks)"
    sources = {
        f"{installed}/{path.relative_to(ROOT / folder).as_posix()}"
        for installed, folder in SOURCE_FOLDERS.items()
        for path in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    packaged = {name for name in files if name.endswith(".py")}
    assert packaged == sources, (
        "[tool.setuptools] packages in pyproject.toml must list every package folder: "
        f"missing {sorted(sources - packaged)}, unexpected {sorted(packaged - sources)}"
    )
    assert "neurodata = neurodata.cli.main:run" in dist_info(files, "entry_points.txt")


def test_installed_wheel_runs_the_command(wheel, tmp_path):
    """Installed (not from the checkout): ``neurodata.cli`` is a plain subpackage, version from one source."""
    target = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target"]
    result = subprocess.run([*install, str(target), str(wheel)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = "import neurodata, neurodata.cli.main as m; print(m.__file__); print(neurodata.__version__)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    cli_file, version = result.stdout.split()
    assert Path(cli_file) == target / "neurodata" / "cli" / "main.py"
    assert version == email.message_from_string(dist_info(wheel_files(wheel), "METADATA"))["Version"]
    result = subprocess.run(
        [sys.executable, "-m", "neurodata.cli", "--version"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert result.returncode == 0 and result.stdout.strip() == f"neurodata {version}", result.stderr


def test_checkout_imports_the_cli_folder_as_neurodata_cli(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    probe = "import neurodata.cli.main as m; print(m.__file__)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == ROOT / "cli" / "main.py"


# --- declared dependencies against imports ---------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One ``import`` statement of a wheel module: the module it names and whether it runs on import."""

    module: str  # absolute dotted name
    eager: bool  # at module level, outside try blocks


def module_name(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(name: str, is_package: bool, source: str) -> list[Import]:
    """The imports in one module's source, relative ones resolved against ``name``."""
    package = name if is_package else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, eager: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(alias.name, eager) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                found.append(Import(base, eager))
                found.extend(Import(f"{base}.{alias.name}", eager) for alias in child.names)
            else:
                lazy = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.Try))
                visit(child, eager and not lazy)

    visit(ast.parse(source), True)
    return found


def scan_wheel(files: dict[str, bytes]) -> tuple[set[str], set[str]]:
    """Third-party top-level names the wheel imports: ``(eager, all)``. Eager: imported when some module is
    imported that a user may import directly (one no other module imports), following the imports that
    run at module level (and their parent packages); the rest run only inside functions or try blocks."""
    modules = {module_name(p): (p.endswith("__init__.py"), files[p].decode()) for p in files if p.endswith(".py")}
    graph = {name: imports_of(name, is_pkg, src) for name, (is_pkg, src) in modules.items()}
    imported = {i.module for imports in graph.values() for i in imports}
    roots = [m for m in modules if m not in imported or m in OWN_PACKAGES]
    eager_modules: set[str] = set()
    while roots:
        name = roots.pop()
        if name in eager_modules:
            continue
        eager_modules.add(name)
        parts = name.split(".")
        roots += [".".join(parts[:k]) for k in range(1, len(parts))]
        roots += [i.module for i in graph[name] if i.eager and i.module in modules]
    eager, every = set(), set()
    for name, imports in graph.items():
        for i in imports:
            top = i.module.split(".")[0]
            if top in OWN_PACKAGES or top in sys.stdlib_module_names or top == "__future__":
                continue
            every.add(top)
            if i.eager and name in eager_modules:
                eager.add(top)
    return eager, every


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def provided(requirement: Requirement) -> set[str]:
    """The distributions a requirement brings: its own, and those of the extras it asks for."""
    names = {canonical(requirement.name)}
    try:
        declared = importlib.metadata.requires(requirement.name) or []
    except importlib.metadata.PackageNotFoundError:
        return names
    for line in declared:
        dependency = Requirement(line)
        marker = dependency.marker
        if marker and any(marker.evaluate({"extra": extra}) for extra in requirement.extras):
            names.add(canonical(dependency.name))
    return names


def test_declared_dependencies_match_the_imports(wheel):
    files = wheel_files(wheel)
    metadata = email.message_from_string(dist_info(files, "METADATA"))
    base: set[str] = set()
    optional: dict[str, str] = {}
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        extras = re.findall(r"extra == ['\"]([^'\"]+)['\"]", str(requirement.marker or ""))
        for name in provided(requirement):
            if not extras:
                base.add(name)
            else:
                optional.setdefault(name, extras[0])
    distributions = importlib.metadata.packages_distributions()

    def distribution(top: str) -> str:
        return canonical(distributions.get(top, [top])[0])

    eager, every = scan_wheel(files)
    undeclared = sorted(top for top in every if distribution(top) not in base | optional.keys())
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
    in_extras = sorted(f"{top} ({optional[distribution(top)]})" for top in eager if distribution(top) not in base)
    assert not in_extras, f"imported at module level, so needed by every install, but only in an extra: {in_extras}"
    unused = sorted(base - {distribution(top) for top in every})
    assert not unused, f"declared dependencies that no module imports: {unused}"
