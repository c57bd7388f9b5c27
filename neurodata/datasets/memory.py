"""How much memory this process may use without pushing the machine into swap or its container into
the OOM killer: the smaller of the system's available memory and the room left under the cgroup's
limit (v2 or v1). Sizes what a compressed tar holds in memory while it is read in place."""

from __future__ import annotations

from pathlib import Path

MEMINFO = Path("/proc/meminfo")
CGROUP_V2 = (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.current"))
CGROUP_V1 = (
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    Path("/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)
NO_LIMIT = 1 << 60  # cgroup v1 writes "no limit" as a huge number near 2**63


def meminfo_available(text: str) -> int | None:
    """``MemAvailable`` in bytes from the text of ``/proc/meminfo``, or None where it is absent.

    Args:
        text: The file's contents.
    """
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name == "MemAvailable":
            fields = rest.split()
            if fields and fields[0].isdigit():
                return int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
    return None


def cgroup_room(limit_text: str, usage_text: str) -> int | None:
    """Bytes left under a cgroup's memory limit, or None where there is no limit.

    Args:
        limit_text: ``memory.max`` (v2: a number or ``max``) or ``memory.limit_in_bytes`` (v1).
        usage_text: ``memory.current`` (v2) or ``memory.usage_in_bytes`` (v1).
    """
    limit, usage = limit_text.strip(), usage_text.strip()
    if not limit.isdigit() or int(limit) >= NO_LIMIT or not usage.isdigit():
        return None
    return max(0, int(limit) - int(usage))


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:  # not Linux, no such controller, or not readable here
        return None


def available_memory() -> int | None:
    """Bytes this process may still use (see the module docstring), or None where the system does
    not say (not Linux)."""
    known = []
    meminfo = _read(MEMINFO)
    if meminfo is not None:
        known.append(meminfo_available(meminfo))
    for limit_path, usage_path in (CGROUP_V2, CGROUP_V1):
        limit, usage = _read(limit_path), _read(usage_path)
        if limit is not None and usage is not None:
            known.append(cgroup_room(limit, usage))
    sizes = [size for size in known if size is not None]
    return min(sizes) if sizes else None


def memory_budget(share: float, least: int, most: int) -> int:
    """``share`` of :func:`available_memory`, kept within ``[least, most]`` bytes (``most`` where
    the system does not say what is available).

    Args:
        share: The fraction of the available memory to use.
        least: The smallest budget (work must go on on a machine short of memory).
        most: The largest budget.
    """
    available = available_memory()
    if available is None:
        return most
    return max(least, min(most, int(available * share)))
