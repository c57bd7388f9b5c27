"""Mutations of valid files for fuzz tests: bit flips, truncations and splices."""

from __future__ import annotations

from hypothesis import strategies as st


def mutate(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for op, a, b in ops:
        if not buf:
            break
        a, b = a % len(buf), b % len(buf)
        if op == "flip":
            buf[a] ^= 1 << (b % 8)
        elif op == "truncate":
            del buf[a:]
        else:  # splice: copy a run of bytes from one place over another
            run = buf[a : a + 1 + b % 64]
            buf[b : b + len(run)] = run
    return bytes(buf)


MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "truncate", "splice"]), st.integers(0, 1 << 20), st.integers(0, 1 << 20)
    ),
    min_size=1,
    max_size=6,
)
