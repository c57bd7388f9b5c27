"""Frames for a large sensor (1280x720): ``to_frame`` in Tonic's output dtype (int16) and ours (int32) vs Tonic.

Run from the project root in the peer environment (Tonic installed)::

    PYTHONPATH=. /work/peerenv/bin/python benchmarks/bench_frames_large.py [--events 2e6] [--repeats 7]

Inputs: uniform synthetic events and the real EVT 3.0 fixture (1280x720, repeated in time), sliced
three ways into 10 frames. Ours on 1 thread and on the default threads (``to_frame(threads=None)``:
the cores this process may use; the row is left out where that is 1), Tonic on 1. Medians of
interleaved runs of wall and CPU time; ratio = Tonic time / our time (above 1: neurodata is faster;
the CPU ratio sums our threads' CPU time). The output column says whether ours equals Tonic's
(where it differs, see "Deliberate differences from Tonic" in docs/sections/representations.md).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import bench_representations as br  # noqa: E402

from neurodata.representations import slice_events, to_frame  # noqa: E402
from neurodata.representations._parallel import frame_threads  # noqa: E402

SIZE = (1280, 720, 2)
N_FRAMES = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=float, default=2e6, help="synthetic events")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds (median reported)")
    args = parser.parse_args()
    from tonic.transforms import ToFrame as TonicToFrame

    inputs = {"synthetic": br.synthetic(int(args.events), *SIZE[:2]), "evt3 fixture x5": br.real_1280x720()}
    print(f"{'input':16} {'slicing':12} {'dtype':6} {'ours ms':>8} {'tonic ms':>9} {'wall':>6} {'cpu':>6} {'threads ours/peer':>17}  output")
    for name, ev in inputs.items():
        tev = br.as_tonic(ev)
        duration = int(ev["t"][-1] - ev["t"][0]) + 1
        for label, spec in (
            ("time_window", {"time_window": duration // N_FRAMES}),
            ("event_count", {"event_count": len(ev) // N_FRAMES}),
            ("n_time_bins", {"n_time_bins": N_FRAMES}),
        ):
            theirs = TonicToFrame(SIZE, **spec)
            expected = theirs(tev)
            lengths = np.diff(slice_events(ev["t"], **spec), axis=0)[0]
            for dtype, threads in ((np.int16, 1), (np.int16, None), (np.int32, 1), (np.int32, None)):
                nbytes = len(lengths) * int(np.prod(SIZE)) * np.dtype(dtype).itemsize
                default = frame_threads(None, int(lengths.sum()), len(lengths), nbytes)
                if threads is None and default == 1:
                    continue
                ours = partial(to_frame, ev, SIZE, dtype=dtype, threads=threads, **spec)
                result = ours()
                assert result.dtype == dtype
                check = "same" if np.array_equal(result, expected) else "differs"
                ours_wall, peer_wall, ours_cpu, peer_cpu = br.compare(ours, partial(theirs, tev), args.repeats)
                used = f"{threads or default} / 1"
                print(
                    f"{name:16} {label:12} {np.dtype(dtype).name:6} {ours_wall * 1e3:8.1f} {peer_wall * 1e3:9.1f} "
                    f"{peer_wall / ours_wall:5.1f}x {peer_cpu / ours_cpu:5.1f}x {used:>17}  {check}"
                )


if __name__ == "__main__":
    main()
