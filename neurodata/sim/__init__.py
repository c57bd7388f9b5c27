"""Event-camera simulation: intensity frames to DVS events, and synthetic gesture recordings."""

from .dvs import DvsParams, simulate_frames

__all__ = ["DvsParams", "simulate_frames"]
