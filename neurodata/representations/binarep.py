"""Bina-Rep frames (Barchid et al. 2022): ``N`` binary frames read as the bits of one N-bit frame."""

from __future__ import annotations

import numpy as np


def to_bina_rep(frames: np.ndarray, n_frames: int = 1, n_bits: int = 8) -> np.ndarray:
    """``[n_frames * n_bits, P, H, W]`` event frames -> ``[n_frames, P, H, W]`` float32 in ``[0, 1]``.

    Within each group of ``n_bits`` frames the first is the most significant bit; a pixel's bit is
    set when its frame holds any event. The N-bit value is divided by ``2**n_bits - 1``.

    Parameters:
        frames: event frames, e.g. from :func:`neurodata.representations.to_frame` with
            ``n_time_bins=n_frames * n_bits``.
        n_frames: number of Bina-Rep frames out.
        n_bits: bits per Bina-Rep frame (at least 2).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise ValueError(f"to_bina_rep takes frames [T, P, H, W]; got shape {frames.shape}")
    if int(n_frames) != n_frames or n_frames < 1 or int(n_bits) != n_bits or n_bits < 2:
        raise ValueError(f"n_frames must be >= 1 and n_bits >= 2 (integers); got {n_frames}, {n_bits}")
    if frames.shape[0] != n_frames * n_bits:
        raise ValueError(
            f"to_bina_rep needs n_frames * n_bits = {n_frames * n_bits} frames, got {frames.shape[0]}"
        )
    bits = (frames > 0).reshape(n_frames, n_bits, *frames.shape[1:])
    weights = (2.0 ** np.arange(n_bits - 1, -1, -1)).reshape(1, n_bits, 1, 1, 1)
    return ((bits * weights).sum(axis=1) / (2**n_bits - 1)).astype(np.float32)
