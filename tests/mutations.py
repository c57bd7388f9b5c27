"""A mutation check of the test suite: small deliberate bugs that the tests must catch.

Each mutation replaces one exact piece of source (a rule at its edge, a time rule, a kernel's backward
pass, a cache coding, a sample rule) in a scratch copy of the repository and runs the tests of its area
there. A mutation the tests do not notice "survives": some rule a user depends on is unguarded. Every
mutation listed here is caught today; keep it that way (add a test, never loosen the list).

    python tests/mutations.py                    # every mutation (about 10-20 minutes on 2 cores)
    python tests/mutations.py --list             # names, files and tests
    python tests/mutations.py evt3-x-edge ...    # the named ones
    python tests/mutations.py --json             # one JSON object per line, for a program

Exit status: 0 when every mutation was caught, 1 when one survived, 2 when a mutation no longer applies
(its source text is gone or appears a different number of times: update the list with the code).
Not part of the suite (it runs the suite many times over); ``docs/testing.md`` says when to run it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    """One deliberate bug.

    Parameters
    ----------
    name:
        A short name to select it by.
    path:
        The file, relative to the repository root.
    old, new:
        The exact source text and its replacement; ``old`` must occur exactly ``count`` times.
    tests:
        The test files (or node ids) of the area, run with ``pytest -x``.
    count:
        How many times ``old`` occurs; every occurrence is replaced.
    """

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    count: int = 1


PROPHESEE_TESTS = ("tests/test_boundaries.py", "tests/test_formats_prophesee.py")
ES_TESTS = ("tests/test_formats_es.py",)
AEDAT_TESTS = ("tests/test_boundaries.py", "tests/test_formats_aedat.py")
FRAME_TESTS = ("tests/test_representations.py", "tests/test_transforms.py")
CACHE_TESTS = ("tests/test_boundaries.py", "tests/test_cache.py", "tests/test_loaders_events.py")
NEURON_TESTS = ("tests/test_snn_numba.py", "tests/test_snn_neurons.py")
FAULT_TESTS = ("tests/test_faults_kill.py",)

MUTATIONS: tuple[Mutation, ...] = (
    # --- decoders: sensor edges --------------------------------------------------------------------
    Mutation("evt3-x-edge", "neurodata/formats/kernels/evt3.py", "x_bad = addr >= width", "x_bad = addr > width", PROPHESEE_TESTS),
    Mutation(
        "evt3-vector-x-edge",
        "neurodata/formats/kernels/evt3.py",
        "if base_x + top >= width:",
        "if base_x + top > width:",
        PROPHESEE_TESTS,
    ),
    Mutation("evt3-y-edge", "neurodata/formats/kernels/evt3.py", "y_bad = yy >= height", "y_bad = yy > height", PROPHESEE_TESTS),
    Mutation("evt3-vector-y-edge", "neurodata/formats/kernels/evt3.py", "if yy >= height:", "if yy > height:", PROPHESEE_TESTS),
    Mutation("es-x-edge", "neurodata/formats/kernels/es.py", "if xx >= width:", "if xx > width:", ES_TESTS),
    Mutation("es-y-flip", "neurodata/formats/kernels/es.py", "event.y = height - 1 - yy", "event.y = yy", ES_TESTS),
    Mutation("evt2-x-edge", "neurodata/formats/kernels/evt2.py", "if xx >= width:", "if xx > width:", PROPHESEE_TESTS),
    Mutation("dat-y-edge", "neurodata/formats/kernels/dat.py", "if yy >= height:", "if yy > height:", PROPHESEE_TESTS),
    Mutation(
        "aedat31-sensor-edge",
        "neurodata/formats/kernels/aedat31.py",
        "outside |= (xx >= width) | (yy >= height)",
        "outside |= (xx > width) | (yy > height)",
        AEDAT_TESTS,
    ),
    Mutation(
        "aedat4-sensor-edge",
        "neurodata/formats/kernels/aedat4.py",
        "xx >= width or yy >= height",
        "xx > width or yy > height",
        ("tests/test_formats_aedat4.py",),
    ),
    # --- decoders: bits and time -------------------------------------------------------------------
    Mutation(
        "aedat31-valid-bit",
        "neurodata/formats/kernels/aedat31.py",
        "            if data & 1:\n                ts = _le_u32(buf, pos + 4)",
        "            if True:\n                ts = _le_u32(buf, pos + 4)",
        AEDAT_TESTS,
    ),
    Mutation(
        "aedat31-ts-overflow",
        "neurodata/formats/kernels/aedat31.py",
        "base = overflows[k] << TS_OVERFLOW_SHIFT",
        "base = overflows[k] << 30",
        AEDAT_TESTS,
    ),
    Mutation(
        "aedat2-x-mirror",
        "neurodata/formats/kernels/aedat2.py",
        "        x[n] = 127 - ((addr >> 1) & 0x7F)",
        "        x[n] = (addr >> 1) & 0x7F",
        AEDAT_TESTS,
    ),
    Mutation(
        "nmnist-polarity-bit",
        "neurodata/formats/kernels/nmnist.py",
        "    event.p = high >> 7",
        "    event.p = (high >> 6) & 1",
        ("tests/test_nmnist.py", "tests/test_formats_columns.py"),
    ),
    Mutation(
        "nmnist-prefix-decodes-overflow",
        "neurodata/formats/kernels/nmnist.py",
        "    while n < n_records and buf[5 * n + 1] != OVERFLOW_Y:",
        "    while n < n_records:",
        ("tests/test_nmnist.py",),
    ),
    Mutation(
        "reader-small-file-one-read",
        "neurodata/reader.py",
        "        if len(data) == status.st_size:",
        "        if True:",
        ("tests/test_reader.py",),
    ),
    Mutation(
        "frames-one-pass-skips-time-order",
        "neurodata/representations/kernels.py",
        "or (not merge and e.p >= n_pol) or e.t < previous_t",
        "or (not merge and e.p >= n_pol)",
        ("tests/test_representations.py",),
    ),
    Mutation(
        "frames-one-pass-skips-gaps",
        "neurodata/representations/kernels.py",
        "        gap_end = starts[i] if i < len(starts) else stop",
        "        gap_end = done if i < len(starts) else stop",
        ("tests/test_representations.py",),
    ),
    Mutation(
        "window-end-apart-from-the-next-start",
        "neurodata/representations/slicing.py",
        "        return _time_edges_to_indices(t, begin, edges[:-1], edges[1:], end)",
        "        return _time_edges_to_indices(t, begin, edges[:-1], edges[:-1] + time_window, end)",
        ("tests/test_representations.py",),
    ),
    Mutation(
        "window-count-in-numpy-integers",
        "neurodata/representations/slicing.py",
        "    return Fraction(value.item() if isinstance(value, np.generic) else value)",
        "    return Fraction(value)",
        ("tests/test_representations.py",),
    ),
    Mutation(
        "window-edges-from-the-absolute-time",
        "neurodata/representations/slicing.py",
        "    return whole + np.ceil(float(begin - whole) + offsets).astype(np.int64)",
        "    return np.ceil(float(begin) + offsets).astype(np.int64)",
        ("tests/test_representations.py",),
    ),
    Mutation(
        "time-surface-ages-from-absolute-times",
        "neurodata/representations/kernels.py",
        "_decay(ref - np.float64(last[c, yy, xx] - origin), tau, decay)",
        "_decay(ref + np.float64(origin) - np.float64(last[c, yy, xx]), tau, decay)",
        ("tests/test_representations.py",),
    ),
    Mutation(
        "writers-take-any-polarity",
        "neurodata/writer.py",
        '            if len(events) and int(events["p"].max()) > 1:',
        "            if False:",
        ("tests/test_writer.py",),
    ),
    Mutation(
        "filters-judge-array-order",
        "neurodata/transforms/functional.py",
        "    if not ordered[0]:",
        "    if False:",
        ("tests/test_transforms.py",),
    ),
    Mutation(
        "make-events-takes-anything",
        "neurodata/events.py",
        "        _check_fits(name, values)",
        "        pass",
        ("tests/test_events.py",),
    ),
    Mutation(
        "cli-options-take-nan",
        "cli/output.py",
        "            or value != value  # NaN",
        "            or False",
        ("tests/test_cli_errors.py",),
    ),
    Mutation(
        "cli-os-errors-as-tracebacks",
        "cli/main.py",
        "        if err.filename is None:",
        "        if True:",
        ("tests/test_cli_errors.py",),
    ),
    Mutation(
        "frame-runs-skip-the-tail",
        "neurodata/representations/_parallel.py",
        "        return first, n_events if self.stop == len(ends) else 0",
        "        return first, 0",
        ("tests/test_frames_parallel.py",),
    ),
    Mutation(
        "frame-runs-skip-an-event-between",
        "neurodata/representations/_parallel.py",
        "        first = int(ends[: self.first].max()) if self.first else 0",
        "        first = int(ends[: self.first].max()) + 1 if self.first else 0",
        ("tests/test_frames_parallel.py",),
    ),
    Mutation(
        "unwrap-ties-backward",
        "neurodata/formats/kernels/time_base.py",
        "    return high + ((new_high - (high & mask) + half - 1) & mask) - (half - 1)",
        "    return high + ((new_high - (high & mask) + half) & mask) - half",
        PROPHESEE_TESTS,
    ),
    Mutation(
        "evt3-time-high-keeps-low",
        "neurodata/formats/kernels/evt3.py",
        "                low = 0\n",
        "                pass\n",
        PROPHESEE_TESTS,
    ),
    # --- sample rules ------------------------------------------------------------------------------
    Mutation(
        "dvs128-row-end-sorted",
        "neurodata/datasets/dvs128.py",
        'reshape(-1), side="left").reshape(-1, 2)',
        'reshape(-1), side="right").reshape(-1, 2)',
        ("tests/test_boundaries.py",),
    ),
    Mutation(
        "dvs128-row-end-unsorted",
        "neurodata/datasets/dvs128.py",
        "return [events[(t >= start) & (t < end)] for",
        "return [events[(t >= start) & (t <= end)] for",
        ("tests/test_boundaries.py",),
    ),
    Mutation(
        "live-queue-never-drops",
        "neurodata/live/queueing.py",
        "while self._items and self._held + len(block.events) > self.max_events:",
        "while False and self._items:",
        ("tests/test_live_dv.py",),
    ),
    # --- archives read in place ---------------------------------------------------------------------
    Mutation(
        "tar-stream-member-padding-not-read",
        "neurodata/datasets/tar_stream.py",
        '_read_exact(stream, -size % BLOCK, what=f"member {name!r}")',
        "None",
        ("tests/test_tar_stream.py",),
    ),
    Mutation(
        "tar-tree-links-not-refused",
        "neurodata/datasets/tar_tree.py",
        "check_kind(self.path, member.info.name, tar_kind(member.info))",
        "None",
        ("tests/test_prepare_in_place.py",),
    ),
    Mutation(
        "unpack-batch-rows-not-advanced",
        "neurodata/formats/kernels/aedat4.py",
        "            return k, bad\n        n += count\n",
        "            return k, bad\n",
        ("tests/test_lz4_frames.py",),
    ),
    Mutation(
        "window-cut-after-equal-time",
        "neurodata/representations/kernels.py",
        "        if t[i] >= value:\n            return i\n",
        "        if t[i] > value:\n            return i\n",
        ("tests/test_reader.py",),
    ),
    Mutation(
        "hash-wait-reports-nothing",
        "neurodata/datasets/sources.py",
        "                    waited = True\n                    report(self.hasher.size, self.total)\n",
        "                    waited = True\n",
        ("tests/test_prepare_in_place.py",),
    ),
    Mutation(
        "tar-hold-ignores-available-memory",
        "neurodata/datasets/tar_tree.py",
        "            hold_bytes = memory_budget(HOLD_SHARE, min(LEAST_HOLD_BYTES, HOLD_BYTES), HOLD_BYTES)\n",
        "            hold_bytes = HOLD_BYTES\n",
        ("tests/test_memory_budget.py",),
    ),
    Mutation(
        "tar-rounds-missing-after-release",
        "neurodata/datasets/tar_tree.py",
        "        missing = {n for n in wanted if not self.ready(n)}  # before the caller builds and releases the held ones\n        yield\n",
        "        yield\n        missing = {n for n in wanted if not self.ready(n)}\n",
        ("tests/test_prepare_in_place.py",),
    ),
    Mutation(
        "tar-rounds-release-before-build",
        "neurodata/datasets/decoding.py",
        "                yield group\n                tree.release(",
        "                tree.release(",
        ("tests/test_prepare_in_place.py",),
    ),
    # --- frame slicing rules -----------------------------------------------------------------------
    Mutation(
        "split-by-time-rounds-up",
        "neurodata/representations/slicing.py",
        "dt = (int(t[-1]) - int(t[0])) // frames_number",
        "dt = -(-(int(t[-1]) - int(t[0])) // frames_number)",
        FRAME_TESTS,
    ),
    Mutation(
        "event-bins-drop-remainder",
        "neurodata/representations/slicing.py",
        "    ends[-1] = n_events\n",
        "",
        FRAME_TESTS,
    ),
    Mutation(
        "denoise-window-inclusive",
        "neurodata/transforms/kernels.py",
        "if xx > 0 and seen[yy, xx - 1] and tj - last[yy, xx - 1] < filter_time:",
        "if xx > 0 and seen[yy, xx - 1] and tj - last[yy, xx - 1] <= filter_time:",
        ("tests/test_transforms.py",),
    ),
    # --- cache codings -----------------------------------------------------------------------------
    Mutation(
        "cache-scatter-polarity-mask",
        "neurodata/cache/kernels.py",
        "    mask = 1 if packed else 255\n    running = state[0]",
        "    mask = 1\n    running = state[0]",
        CACHE_TESTS,
    ),
    Mutation(
        "cache-batch-polarity-mask",
        "neurodata/cache/kernels.py",
        "    mask = 1 if packed else 255\n    times, rows = coded[src : src + n], t_row[dst : dst + n]",
        "    mask = 1\n    times, rows = coded[src : src + n], t_row[dst : dst + n]",
        CACHE_TESTS,
    ),
    Mutation(
        "cache-sample-restart",
        "neurodata/cache/kernels.py",
        "            running = 0\n            while s < m and offsets[s] <= dst + j:",
        "            while s < m and offsets[s] <= dst + j:",
        CACHE_TESTS,
    ),
    Mutation(
        "cache-packs-wide-polarities",
        "neurodata/cache/codecs.py",
        "(0 <= p_range[0] and p_range[1] <= 1)",
        "(0 <= p_range[0] and p_range[1] <= 3)",
        CACHE_TESTS,
    ),
    Mutation(
        "cache-sample-starts-absolute",
        "neurodata/cache/codecs.py",
        "    coded[starts] = t[starts]\n",
        "",
        CACHE_TESTS,
    ),
    Mutation(
        "cache-chunk-crc-skipped",
        "neurodata/cache/shard_reader.py",
        "        if not self.checked:\n            return raw\n",
        "        if True:\n            return raw[: len(raw) - CRC_BYTES] if self.checked else raw\n",
        ("tests/test_cache_checksums.py",),
    ),
    Mutation(
        "row-kernel-chunk-crc-skipped",
        "neurodata/cache/row_kernel.py",
        "        if _crc32c_value(address, length) != header[0]:\n",
        "        if False:\n",
        ("tests/test_cache_row_kernel.py",),
    ),
    Mutation(
        "row-kernel-missing-chunk-not-filled",
        "neurodata/cache/row_kernel.py",
        "        into[:] = fill\n",
        "",
        ("tests/test_cache_row_kernel.py",),
    ),
    Mutation(
        "short-first-read-is-the-end",
        "neurodata/reader.py",
        "        if len(data) < FIRST_READ_BYTES and not (more := os.read(fd, FIRST_READ_BYTES)):",
        "        if len(data) < FIRST_READ_BYTES:",
        ("tests/test_reader.py",),
    ),
    Mutation(
        "fresh-output-copied-out",
        "neurodata/formats/output.py",
        "            room.resize(n, refcheck=False)  # refcheck would count the decoder's own references\n            return room\n",
        "            return room[:n].copy()\n",
        ("tests/test_formats_output.py",),
    ),
    Mutation(
        "thread-count-in-the-key",
        "neurodata/transforms/to_representations.py",
        "if v is not None and k not in self.execution}}",
        "if v is not None}}",
        ("tests/test_representation_key.py",),
    ),
    Mutation(
        "nmnist-vector-group-ignores-marker",
        "neurodata/formats/kernels/nmnist_vector.py",
        "_Y_LANES = [1 if lane % RECORD == 1 and lane < RECORD * GROUP else 0 for lane in range(16)]",
        "_Y_LANES = [1 if lane == 1 else 0 for lane in range(16)]",
        ("tests/test_nmnist.py",),
    ),
    Mutation(
        "nmnist-vector-polarity-from-y",
        "neurodata/formats/kernels/nmnist_vector.py",
        "    (2, 0x00, True),  # p: bit 7 of the third byte",
        "    (1, 0x00, True),  # p: bit 7 of the third byte",
        ("tests/test_nmnist.py",),
    ),
    # --- neuron kernels: forward and backward passes -----------------------------------------------
    Mutation(
        "fire-strictly-above",
        "snn/kernels/numba_neurons.py",
        "            s = _ONE if h[j] - theta[j] >= _ZERO else _ZERO\n            spikes[j] = s\n            v[j] = h[j] - s * theta[j]",
        "            s = _ONE if h[j] - theta[j] > _ZERO else _ZERO\n            spikes[j] = s\n            v[j] = h[j] - s * theta[j]",
        NEURON_TESTS,
    ),
    Mutation(
        "lif-decay-input-leak",
        "snn/kernels/numba_neurons.py",
        "            h[j] = v[j] + (x[j] - (v[j] - leak)) / c\n",
        "            h[j] = v[j] + (x[j] - v[j]) / c\n",
        NEURON_TESTS + ("tests/test_snn_params.py",),
    ),
    Mutation(
        "backward-soft-reset-share",
        "snn/kernels/numba_neurons.py",
        "grad_s[j] = grad_out[j] if detach_reset else grad_out[j] - theta[j] * grad_v[j]",
        "grad_s[j] = grad_out[j] if detach_reset else grad_out[j] + theta[j] * grad_v[j]",
        NEURON_TESTS,
    ),
    Mutation(
        "backward-hard-reset-gate",
        "snn/kernels/numba_neurons.py",
        "grad_h[j] = grad_s[j] * sg[j] + grad_v[j] * (_ONE - s)",
        "grad_h[j] = grad_s[j] * sg[j] + grad_v[j]",
        NEURON_TESTS,
    ),
    Mutation(
        "atan-surrogate-scale",
        "snn/kernels/numba_neurons.py",
        "        half_alpha = _HALF * alpha\n        scale = _HALF_PI * alpha",
        "        half_alpha = alpha\n        scale = _HALF_PI * alpha",
        NEURON_TESTS,
    ),
    Mutation(
        "plif-grad-k",
        "snn/kernels/numba_neurons.py",
        "acc[j] += np.float64(grad_h[j] * (xt[j] - (v_prev[j] - leak)))",
        "acc[j] += np.float64(grad_h[j] * xt[j])",
        NEURON_TESTS,
    ),
    Mutation(
        "cuba-current-decay-grad",
        "snn/kernels/numba_neurons.py",
        "grad_u[j] = grad_i * current_decay",
        "grad_u[j] = grad_i",
        NEURON_TESTS,
    ),
    Mutation(
        "fork-keeps-locks",
        "neurodata/localfs.py",
        "    os.register_at_fork(after_in_child=_close_inherited_locks)",
        "    pass",
        FAULT_TESTS,
    ),
    Mutation(
        "resume-rebuilds-staged-parts",
        "neurodata/cache/writer.py",
        "        if not resuming:  # parts are staged only after their plan",
        "        if True:  # parts are staged only after their plan",
        ("tests/test_cache.py",),
    ),
    Mutation(
        "zarr-before-fork",
        "neurodata/datasets/prepare.py",
        'WARM_MODULES = ("neurodata.cache.writer", "neurodata.datasets.decoding")',
        'WARM_MODULES = ("neurodata.cache.writer", "neurodata.cache.verify", "neurodata.datasets.decoding")',
        ("tests/test_startup.py",),
    ),
    Mutation(
        "frame-runs-fault-on-the-pool",
        "neurodata/representations/_parallel.py",
        "before=fault_in if len(runs) > 1 else None",
        "before=None",
        ("tests/test_frames_parallel.py",),
    ),
    Mutation(
        "frames-nest-in-decode-threads",
        "neurodata/representations/_parallel.py",
        "threads = 1 if share <= 1 or _in_worker_process() or in_parallel_section() else",
        "threads = 1 if share <= 1 or _in_worker_process() else",
        ("tests/test_frames_parallel.py",),
    ),
    Mutation(
        "reused-batch-keeps-old-padding",
        "neurodata/loaders/collate.py",
        "                column[row, n:].view(np.uint8)[:] = 0",
        "                pass",
        ("tests/test_loaders_collate.py", "tests/test_loaders_shm_pool.py", "tests/test_loaders.py"),
    ),
    Mutation(
        "workers-outlive-parent",
        "neurodata/workers.py",
        "    if _set_parent_death_signal():",
        "    if True:",
        FAULT_TESTS,
    ),
    Mutation(
        "cache-missing-file-read-as-zeros",
        "neurodata/cache/presence.py",
        "        if have is None:\n",
        "        if have is None and False:\n",
        ("tests/test_cache_damage.py",),
    ),
    Mutation(
        "cache-n-samples-trusted",
        "neurodata/cache/reader.py",
        "        if len(offsets) != self.n_samples + 1 or len(labels) != self.n_samples:",
        "        if False:",
        ("tests/test_cache_damage.py",),
    ),
    Mutation(
        "verify-crc32-ignored",
        "neurodata/cache/verify.py",
        'zip(("CRC32C", "CRC-32"), have[1:], entry[1:])',
        'zip(("CRC32C",), have[1:], entry[1:])',
        ("tests/test_cache_damage.py",),
    ),
    Mutation(
        "format-error-unpicklable",
        "neurodata/errors.py",
        "        return type(self), (self.source, self.offset, self.message)",
        "        return type(self), (str(self),)",
        ("tests/test_errors_pickle.py",),
    ),
    Mutation(
        "quant-nan-weights-kept",
        "snn/quant/plan.py",
        "        if problem is None:\n            problem = non_finite(m.weight, m.bias)\n",
        "",
        ("tests/test_hw_loihi2.py",),
    ),
    Mutation(
        "replay-cut-stream-looks-complete",
        "neurodata/live/replay.py",
        "                conn.sendall(CUT_PACKET)",
        "                pass",
        ("tests/test_live_dv.py",),
    ),
    Mutation(
        "pacing-empty-windows",
        "neurodata/live/pacing.py",
        "rechunk_by_time(blocks, packet_us, skip_empty=True)",
        "rechunk_by_time(blocks, packet_us, skip_empty=False)",
        ("tests/test_live_dv.py::test_a_gap_in_the_recording_is_skipped_not_cut_into_empty_windows",),
    ),
    Mutation(
        "train-nan-input-trained-on",
        "snn/train/engine.py",
        "        if x.is_floating_point() and not bool(torch.isfinite(x).all()):",
        "        if False:",
        ("tests/test_train.py",),
    ),
    Mutation(
        "resume-keeps-old-schedule-rate",
        "snn/train/fit.py",
        '            group["lr"] = base * lr_factor(scheduler.last_epoch, config)',
        "            pass",
        ("tests/test_train.py",),
    ),
    Mutation(
        "cpu-backend-half-state",
        "snn/backends/cpu_backend.py",
        "    dtype = torch.float32 if x_seq.dtype in (torch.float16, torch.bfloat16) else x_seq.dtype",
        "    dtype = x_seq.dtype",
        ("tests/test_snn_neurons.py",),
    ),
    Mutation(
        "open-writer-chunks-unconverted",
        "neurodata/writer.py",
        "        events = as_events(events)\n        with _naming(self.path):",
        "        with _naming(self.path):",
        ("tests/test_writer.py",),
    ),
    Mutation(
        "writer-order-unchecked",
        "neurodata/writer.py",
        "            if self.time_ordered and len(events):",
        "            if False:",
        ("tests/test_writer.py",),
    ),
    Mutation(
        "evt3-wrap-not-written-out",
        "neurodata/formats/kernels/evt3.py",
        "                    high = min(new_high, high + HALF_RANGE - 1, high | 0xFFF)",
        "                    high = min(new_high, high + HALF_RANGE - 1)",
        ("tests/test_formats_prophesee.py",),
    ),
    Mutation(
        "incomplete-window-cut-at-end-time",
        "neurodata/representations/slicing.py",
        "        last[-1] = max(last[-1], closed)",
        "        last[-1] = closed",
        ("tests/test_representations.py",),
    ),
    Mutation(
        "pad-events-signed-polarity-copied",
        "neurodata/representations/_layout.py",
        "    if signed:\n        return (p > 0).astype(np.uint8)",
        "    if False:\n        return (p > 0).astype(np.uint8)",
        ("tests/test_loaders_collate.py",),
    ),
    Mutation(
        "sim-frame-shape-unchecked",
        "neurodata/sim/dvs.py",
        "        if frame.shape != self.shape:",
        "        if frame.ndim != 2:",
        ("tests/test_sim.py",),
    ),
)


def copy_tree(target: Path) -> None:
    """The files git tracks, and the untracked ones it does not ignore, copied to ``target``."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    for name in filter(None, listing.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def apply(tree: Path, mutation: Mutation) -> str:
    """Write ``mutation`` into ``tree``; return the original text (to restore). Raises ValueError when the
    source no longer holds ``old`` exactly ``count`` times."""
    path = tree / mutation.path
    original = path.read_text()
    found = original.count(mutation.old)
    if found != mutation.count:
        raise ValueError(f"{mutation.name}: {mutation.path} holds its source text {found} times, expected {mutation.count}")
    path.write_text(original.replace(mutation.old, mutation.new))
    return original


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float, numba_cache: Path) -> tuple[str, float]:
    """``("caught" | "survived" | "timeout", seconds)`` for the tests run in ``tree``, Numba caching
    its kernels in ``numba_cache``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "NUMBA_CACHE_DIR": str(numba_cache)}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    start = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=tree, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.perf_counter() - start
    return ("survived" if result.returncode == 0 else "caught"), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--json", action="store_true", help="one JSON object per mutation")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutation's tests")
    args = parser.parse_args(argv)
    known = {m.name: m for m in MUTATIONS}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        print(f"mutations: unknown names {unknown}; --list shows them", file=sys.stderr)
        return 2
    chosen = [known[n] for n in args.names] or list(MUTATIONS)
    if args.list:
        for m in chosen:
            print(f"{m.name:28} {m.path:44} {' '.join(m.tests)}")
        return 0
    survived = stale = 0
    with tempfile.TemporaryDirectory(prefix="mutations-") as scratch:
        tree = Path(scratch)
        copy_tree(tree)
        for m in chosen:
            try:
                original = apply(tree, m)
            except ValueError as err:
                stale += 1
                outcome, seconds = "stale", 0.0
                print(err, file=sys.stderr)
            else:
                # Numba checks a cached kernel against its own file only: a kernel of another file that
                # calls the mutated one would run the unmutated code from a cache common to all mutations
                cache = tree / ".numba-cache" / (m.name if "numba" in original else "common")
                try:
                    outcome, seconds = run_tests(tree, m.tests, args.timeout, cache)
                finally:
                    (tree / m.path).write_text(original)
            survived += outcome != "caught" and outcome != "stale"
            if args.json:
                print(json.dumps({"name": m.name, "path": m.path, "outcome": outcome, "seconds": round(seconds, 1)}))
            else:
                print(f"{m.name:28} {outcome:9} {seconds:6.1f} s", flush=True)
    if not args.json:
        print(f"{len(chosen)} mutations: {len(chosen) - survived - stale} caught, {survived} survived, {stale} stale")
    return 2 if stale else int(survived > 0)


if __name__ == "__main__":
    sys.exit(main())
