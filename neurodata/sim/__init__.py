"""Event-camera simulation: intensity frames or videos to DVS events, and synthetic gesture recordings."""

from .dvs import DvsParams, simulate_frames
from .video import read_frames, simulate_video

__all__ = ["DvsParams", "read_frames", "simulate_frames", "simulate_video"]
