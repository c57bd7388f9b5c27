"""The memory a compressed tar may hold while read in place: from /proc/meminfo and the cgroup's
limit, so a container with little memory is not pushed into its OOM killer."""

from __future__ import annotations

import io
import tarfile

import pytest

from neurodata.datasets import memory, tar_tree
from neurodata.datasets.memory import available_memory, cgroup_room, meminfo_available
from neurodata.datasets.tar_tree import TarTree

MEMINFO = "MemTotal:       32607692 kB\nMemFree:         1203908 kB\nMemAvailable:   23714360 kB\nBuffers: 1 kB\n"


def test_meminfo_available_reads_the_kernels_estimate():
    assert meminfo_available(MEMINFO) == 23714360 * 1024
    assert meminfo_available("MemTotal: 1 kB\nMemFree: 1 kB\n") is None  # kernels before 3.14


@pytest.mark.parametrize(
    "limit, usage, room",
    [
        ("2147483648\n", "536870912\n", 1610612736),  # v2 or v1 with a limit
        ("max\n", "536870912\n", None),  # v2, no limit
        ("9223372036854771712\n", "2833432576\n", None),  # v1 writes "no limit" as a huge number
        ("1000\n", "5000\n", 0),  # over the limit (reclaim pending): no room, never negative
    ],
)
def test_cgroup_room_is_the_limit_less_the_usage(limit, usage, room):
    assert cgroup_room(limit, usage) == room


def test_the_smaller_of_the_machine_and_the_container_wins(tmp_path, monkeypatch):
    (tmp_path / "meminfo").write_text(MEMINFO)
    (tmp_path / "max").write_text("1073741824\n")
    (tmp_path / "current").write_text("268435456\n")
    monkeypatch.setattr(memory, "MEMINFO", tmp_path / "meminfo")
    monkeypatch.setattr(memory, "CGROUP_V2", (tmp_path / "max", tmp_path / "current"))
    monkeypatch.setattr(memory, "CGROUP_V1", (tmp_path / "absent", tmp_path / "absent"))
    assert available_memory() == 805306368
    (tmp_path / "max").write_text("max\n")
    assert available_memory() == 23714360 * 1024
    monkeypatch.setattr(memory, "MEMINFO", tmp_path / "absent")
    assert available_memory() is None  # not Linux: nothing says


def gz_tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize(
    "available, expected",
    [
        (8 << 30, tar_tree.HOLD_BYTES),  # plenty: the cap
        (1 << 30, 256 << 20),  # a quarter of what is available
        (100 << 20, tar_tree.LEAST_HOLD_BYTES),  # short of memory: the floor, work goes on
        (None, tar_tree.HOLD_BYTES),  # the system does not say
    ],
)
def test_a_compressed_tar_holds_a_quarter_of_the_available_memory(tmp_path, monkeypatch, available, expected):
    path = tmp_path / "a.tar.gz"
    path.write_bytes(gz_tar({"a/x.bin": b"x" * 1000, "a/y.bin": b"y" * 1000}))
    monkeypatch.setattr(memory, "available_memory", lambda: available)
    tree = TarTree(path)
    assert tree.hold_bytes == expected
    assert tree.read_bytes("a/y.bin") == b"y" * 1000
