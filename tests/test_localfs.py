"""The leaf helpers: atomic writes (permissions from the umask, as open gives), folder replacement, locks."""

from __future__ import annotations

import ast
import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from neurodata.errors import CannotWriteError, PathNotFoundError
from neurodata.localfs import (
    SHARED,
    LockTimeout,
    atomic_output,
    cache_name,
    default_root,
    file_lock,
    locked_temporary,
    remove_stale_temporaries,
    replace_tree,
    write_atomic,
)

ROOT = Path(__file__).resolve().parents[1]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_write_replaces_whole_and_respects_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "a.bin", b"old")
        write_atomic(tmp_path / "a.bin", b"new")
        write_atomic(tmp_path / "b.txt", "text", permissions=0o640, durable=False)
        write_atomic(tmp_path / "sub" / "dir" / "c.txt", "deep", parents=True)
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").read_bytes() == b"new"
    assert mode_of(tmp_path / "a.bin") == SHARED & ~umask == 0o666 & ~umask
    assert mode_of(tmp_path / "b.txt") == 0o640 & ~umask
    assert mode_of(tmp_path / "sub" / "dir" / "c.txt") == 0o666 & ~umask
    assert mode_of(tmp_path / "sub") == mode_of(tmp_path / "sub" / "dir") == 0o777 & ~umask
    assert (tmp_path / "sub" / "dir" / "c.txt").read_text() == "deep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "sub"]  # no temporary left


def test_atomic_output_into_a_missing_folder_names_the_path_not_a_temporary(tmp_path):
    target = tmp_path / "nowhere" / "out.bin"
    with pytest.raises(PathNotFoundError, match="does not exist") as caught:
        write_atomic(target, b"x")
    assert isinstance(caught.value, FileNotFoundError)
    assert str(caught.value).startswith(f"{target}: ") and ".tmp-" not in str(caught.value)


@pytest.mark.parametrize("target", ["folder", "name/"])
def test_atomic_output_onto_a_folder_names_the_path_not_a_temporary(tmp_path, target):
    """``--out`` naming a folder failed at the final rename, naming the temporary file
    (``.x.png.tmp-19653-47d216df: Is a directory``)."""
    (tmp_path / "folder").mkdir()
    path = f"{tmp_path}/{target}"  # a Path would drop the trailing slash
    with pytest.raises(CannotWriteError, match=re.escape(f"{path}: cannot write: a file is needed here, not a folder")):
        with atomic_output(path) as fileobj:
            fileobj.write(b"never")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


def test_atomic_output_keeps_the_old_file_and_no_temporary_on_error(tmp_path):
    target = tmp_path / "keep.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(target) as f:
        f.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.bin"]
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "x.bin", b"")  # parents only when asked


def test_replace_tree_swaps_folders(tmp_path):
    for content in ("one", "two"):
        new = tmp_path / "new"
        new.mkdir()
        (new / "f").write_text(content)
        replace_tree(new, tmp_path / "target", tmp_path / ".target.old")
        assert (tmp_path / "target" / "f").read_text() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]


HOLD = """
import sys, time
from neurodata.localfs import file_lock
with file_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(30)
"""


def test_file_lock_waits_times_out_and_removes_on_request(tmp_path):
    lock = tmp_path / "x.lock"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLD), str(lock)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        waits = []
        with pytest.raises(LockTimeout, match="another process holds"):
            with file_lock(lock, timeout=0.05, on_wait=lambda: waits.append(1)):
                pass
        assert waits == [1]
    finally:
        holder.kill()
        holder.wait()
    with file_lock(lock, remove=True):  # the kernel dropped the killed holder's lock
        assert lock.exists()
    assert not lock.exists()


def _temporary_in_child(target: Path, then: str) -> tuple[subprocess.Popen, str]:
    """A process that makes a locked temporary of ``target`` with a file in it, prints its name, then
    runs ``then`` (still inside the lock); the process and the temporary's name."""
    code = textwrap.dedent(f"""
        import os, signal, sys, time
        from neurodata.localfs import locked_temporary
        with locked_temporary({str(target)!r}) as tmp:
            os.makedirs(tmp)
            open(os.path.join(tmp, "part"), "w").close()
            print(tmp, flush=True)
            {then}
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return child, child.stdout.readline().strip()


def test_temporaries_of_dead_runs_are_removed_and_those_of_live_runs_kept(tmp_path):
    target = tmp_path / "train"
    live_run, live = _temporary_in_child(target, "time.sleep(60)")
    dead_run, dead = _temporary_in_child(target, "os.kill(os.getpid(), signal.SIGKILL)")  # keeps live's
    dead_run.wait(timeout=60)
    (tmp_path / "test.tmp-1-ab").mkdir()  # another folder's temporary
    try:
        assert Path(dead).is_dir() and Path(f"{dead}.lock").exists()  # as a SIGKILL leaves them
        assert remove_stale_temporaries(target) == [Path(dead).name]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [Path(live).name, f"{Path(live).name}.lock", "test.tmp-1-ab"]
        )
    finally:
        live_run.kill()
        live_run.wait()
    with locked_temporary(target) as tmp:  # a later run: the killed one's temporary goes too
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{Path(tmp).name}.lock", "test.tmp-1-ab"])
    assert [p.name for p in tmp_path.iterdir()] == ["test.tmp-1-ab"]


def test_default_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("NEURODATA_HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home"
    monkeypatch.delenv("NEURODATA_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_root() == tmp_path / "xdg" / "neurodata"
    assert cache_name("nmnist", {"a": "1", "b": "2"}, {"a": "1"}) == "nmnist-b=2.zarr"


def imported_modules(relative: str) -> set[str]:
    """The modules of the neurodata package a source file imports (relative imports resolved)."""
    path = ROOT / relative
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            found.add(".".join([*base, *(node.module or "").split(".")]).rstrip("."))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("neurodata"):
            found.add(node.module)
    return found


def test_localfs_is_a_leaf_and_lower_layers_do_not_import_upper_ones():
    assert imported_modules("neurodata/localfs.py") == {"neurodata.errors", "neurodata.diskspace"}
    assert imported_modules("neurodata/diskspace.py") == {"neurodata.errors"}
    assert "neurodata.writer" not in imported_modules("neurodata/formats/aedat31.py")
    assert not any(
        m.startswith("neurodata.datasets") for m in imported_modules("neurodata/loaders/source.py")
    )
    assert not any(m.startswith("neurodata.datasets") for m in imported_modules("neurodata/sim/gestures.py"))
