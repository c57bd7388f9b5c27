"""A synthetic stand-in for DVS128 Gesture: 11 classes of moving hands, seen by a simulated DVS.

The motions echo the real classes (clap, waves, arm circles in both directions, roll, drums,
guitar, random "other" movements). "Users" differ in size, speed, position and phase; lighting
conditions differ in background brightness, contrast and sensor noise. Two scenes (:data:`SCENES`):
``"people"`` (the default) draws each hand with fingers and an arm, in front of a swaying torso and
head, with motions at their real pace, seen by a sensor with hot pixels: 20-110 k events/s per
gesture (median ~50 k), the range of the real recordings while a hand moves. ``"blobs"`` draws
each hand as one bright blob (~10-25 k events/s), small and quick for the demo. :func:`write_archive`
lays the recordings out exactly like ``DvsGesture.tar.gz`` (AEDAT 3.1 trials, ``*_labels.csv``,
``trials_to_train.txt`` / ``trials_to_test.txt``) so that ``neurodata prepare dvs128`` reads it
as it reads the real archive. The data is synthetic: accuracy on it says the pipeline learns,
nothing about the real dataset.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..events import concatenate
from ..localfs import SHARED, atomic_output
from ..workers import process_pool
from ..writer import write
from .dvs import DvsParams, DvsPixelArray

SIZE = 128
LIGHTING = {  # background brightness, blob contrast, shot-noise rate per pixel (Hz)
    "fluorescent": (0.35, 0.55, 0.3),
    "led": (0.5, 0.45, 0.5),
    "natural": (0.25, 0.6, 1.0),
}


@dataclass(frozen=True)
class Scene:
    """What the camera sees besides the hands' centres, and the sensor's contrast threshold and hot pixels.

    Attributes:
        per_second: Motions repeat at their frequencies per second, not per gesture.
        fingers: Finger blobs per hand, spread away from the forearm.
        arms: Draw an upper arm from a fixed shoulder to an elbow that follows the hand, and a forearm.
        body: Draw a torso and a head, swaying slightly.
        threshold: ON and OFF contrast thresholds (log intensity).
        hot_pixels: Number of pixels that fire ON whatever they see.
        hot_pixel_hz: The hot pixels' ON event rate per second.
    """

    per_second: bool = False
    fingers: int = 0
    arms: bool = False
    body: bool = False
    threshold: float = 0.2
    hot_pixels: int = 0
    hot_pixel_hz: float = 0.0


SCENES = {
    "blobs": Scene(),
    # threshold 0.2 (log intensity, ~22 % contrast): v2e's default; a few hot pixels
    "people": Scene(
        per_second=True, fingers=4, arms=True, body=True, threshold=0.2, hot_pixels=6, hot_pixel_hz=50.0
    ),
}
# canvas units; a hand left of centre belongs to the left arm
SHOULDERS = ((0.37, 0.62), (0.63, 0.62))
ELBOWS = ((0.3, 0.85), (0.7, 0.85))  # at rest


@dataclass(frozen=True)
class User:
    """How one synthetic subject moves: amplitude/size scale, speed, offset and starting phase.

    Attributes:
        scale: Multiplies the motions' amplitudes and the blobs' radii.
        speed: Multiplies the motions' frequencies.
        dx: Horizontal offset of everything drawn, in canvas units (1 = the sensor's width).
        dy: Vertical offset in canvas units.
        phase: Starting phase of the periodic motions in radians.
    """

    scale: float
    speed: float
    dx: float
    dy: float
    phase: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> User:
        """A random subject: scale 0.85-1.15, speed 0.8-1.25, offsets within 0.05, any phase.

        Args:
            rng: The generator the five values are drawn from (in field order).
        """
        return cls(
            rng.uniform(0.85, 1.15),
            rng.uniform(0.8, 1.25),
            rng.uniform(-0.05, 0.05),
            rng.uniform(-0.05, 0.05),
            rng.uniform(0, 2 * np.pi),
        )


def _circle(cx: float, cy: float, direction: int) -> Callable:
    def blobs(u, user, rng_wave):
        theta = direction * 2 * np.pi * 1.5 * user.speed * u + user.phase
        r = 0.15 * user.scale
        return [(cx + r * np.cos(theta), cy + r * np.sin(theta), 0.07)]

    return blobs


def _wave(cx: float) -> Callable:
    def blobs(u, user, rng_wave):
        return [(cx + 0.12 * user.scale * np.sin(2 * np.pi * 2.0 * user.speed * u + user.phase), 0.32, 0.06)]

    return blobs


def _clap(u, user, rng_wave):
    d = 0.06 + 0.14 * user.scale * abs(np.sin(2 * np.pi * 1.5 * user.speed * u + user.phase))
    return [(0.5 - d, 0.5, 0.06), (0.5 + d, 0.5, 0.06)]


def _roll(u, user, rng_wave):
    theta = 2 * np.pi * 2.5 * user.speed * u + user.phase
    r = 0.08 * user.scale
    return [
        (0.5 + r * np.cos(theta), 0.55 + r * np.sin(theta), 0.05),
        (0.5 - r * np.cos(theta), 0.55 - r * np.sin(theta), 0.05),
    ]


def _drums(u, user, rng_wave):
    s = np.sin(2 * np.pi * 2.0 * user.speed * u + user.phase)
    return [(0.33, 0.62 + 0.1 * user.scale * s, 0.05), (0.67, 0.62 - 0.1 * user.scale * s, 0.05)]


def _guitar(u, user, rng_wave):
    strum = np.sin(2 * np.pi * 3.0 * user.speed * u + user.phase)
    return [(0.45, 0.65 + 0.1 * user.scale * strum, 0.05), (0.72, 0.42 + 0.01 * strum, 0.05)]


def _other(u, user, rng_wave):
    a, f, ph = rng_wave
    x = 0.5 + sum(a[k] * np.sin(2 * np.pi * f[k] * u + ph[k]) for k in range(3))
    y = 0.5 + sum(a[k + 3] * np.sin(2 * np.pi * f[k + 3] * u + ph[k + 3]) for k in range(3))
    return [(x, y, 0.06)]


# DVS128 Gesture's classes in label order, named as in its gesture_mapping.csv (the same as
# neurodata.datasets.dvs128.CLASS_NAMES, which a test checks: the simulator does not import the
# dataset layer), and the motion drawn for each
GESTURES = (
    ("hand_clapping", _clap),
    ("right_hand_wave", _wave(0.72)),
    ("left_hand_wave", _wave(0.28)),
    ("right_arm_clockwise", _circle(0.7, 0.5, 1)),
    ("right_arm_counter_clockwise", _circle(0.7, 0.5, -1)),
    ("left_arm_clockwise", _circle(0.3, 0.5, 1)),
    ("left_arm_counter_clockwise", _circle(0.3, 0.5, -1)),
    ("arm_roll", _roll),
    ("air_drums", _drums),
    ("air_guitar", _guitar),
    ("other_gestures", _other),
)
CLASS_NAMES = tuple(name for name, _ in GESTURES)


def _limb(a: tuple[float, float], b: tuple[float, float], radius: float, weight: float) -> list[tuple]:
    """A chain of blobs from ``a`` to ``b`` (overlapping, so it reads as one solid limb)."""
    n = int(np.ceil(np.hypot(b[0] - a[0], b[1] - a[1]) / (1.3 * radius))) + 1
    return [(a[0] + k / n * (b[0] - a[0]), a[1] + k / n * (b[1] - a[1]), radius, weight) for k in range(n)]


def dress(hands: list[tuple[float, float, float]], scene: Scene, u: float, user: User) -> list[tuple]:
    """The blobs ``(x, y, radius[, weight])`` of the scene around the hands a motion returns at time ``u``.

    Each arm hangs from a fixed shoulder; its elbow follows a quarter of the hand's movement away
    from the elbow's rest position. Fingers fan out from the hand, away from the elbow. The torso
    and head sway by ~1 % of the canvas, 1.2 times per unit of ``u`` (a second or a gesture).

    Args:
        hands: The hands' ``(x, y, radius)`` in canvas units.
        scene: Which of body, arms and fingers to draw.
        u: Time in the motion's unit (seconds or fraction of the gesture).
        user: The subject (speed and phase of the sway).
    """
    blobs: list[tuple] = []
    if scene.body:
        sway = 0.012 * np.sin(2 * np.pi * 1.2 * user.speed * u + user.phase)
        blobs += [(0.5 + sway, 0.95, 0.16, 0.5), (0.5 + sway, 0.45, 0.075, 0.6)]
    for hx, hy, radius in hands:
        side = 0 if hx < 0.5 else 1
        (sx, sy), (rx, ry) = SHOULDERS[side], ELBOWS[side]
        ex, ey = rx + 0.25 * (hx - rx), ry + 0.25 * (hy - ry)
        if scene.arms:
            blobs += _limb((sx, sy), (ex, ey), 0.5 * radius, 0.7) + _limb(
                (ex, ey), (hx, hy), 0.45 * radius, 0.8
            )
        blobs.append((hx, hy, radius))
        length = max(np.hypot(hx - ex, hy - ey), 1e-6)
        ux, uy = (hx - ex) / length, (hy - ey) / length
        for angle in np.linspace(-0.6, 0.6, scene.fingers):
            fx = ux * np.cos(angle) - uy * np.sin(angle)
            fy = ux * np.sin(angle) + uy * np.cos(angle)
            blobs.append((hx + 1.3 * radius * fx, hy + 1.3 * radius * fy, 0.3 * radius, 0.9))
    return blobs


def render(blobs: list[tuple], user: User, lighting: str, grid: np.ndarray) -> np.ndarray:
    """One intensity frame: background plus Gaussian blobs ``(x, y, radius[, weight])`` in canvas units.

    Args:
        blobs: The blobs; ``weight`` (default 1) scales a blob's contrast.
        user: Scales the radii and offsets the positions.
        lighting: Key of :data:`LIGHTING`: background brightness and blob contrast.
        grid: ``(yy, xx)`` pixel coordinates in canvas units, ``np.mgrid[0:H, 0:W] / SIZE``.

    Returns:
        Intensities ``[H, W]`` float64.
    """
    background, contrast, _ = LIGHTING[lighting]
    yy, xx = grid
    frame = np.full(xx.shape, background)
    if not blobs:
        return frame
    cx, cy, r, w = (np.array(v) for v in zip(*((*b, 1.0) if len(b) == 3 else b for b in blobs)))
    r = r[:, None] * user.scale
    # a Gaussian is separable: each blob is the outer product of two 1-D profiles, and their weighted
    # sum over blobs is one matrix product
    gx = np.exp(-((xx[0] - cx[:, None] - user.dx) ** 2) / (2 * r * r))
    gy = np.exp(-((yy[:, 0] - cy[:, None] - user.dy) ** 2) / (2 * r * r))
    return frame + gy.T @ (contrast * w[:, None] * gx)


def gesture_events(
    cls: int,
    user: User,
    lighting: str,
    t0: int,
    duration_us: int,
    seed: int,
    sensor: DvsPixelArray | None = None,
    frame_us: int = 4000,
    scene: Scene = SCENES["people"],
) -> tuple[np.ndarray, DvsPixelArray]:
    """Events of one gesture of class ``cls`` (0-based) starting at ``t0``; the sensor carries over.

    Args:
        user: The subject performing it.
        lighting: Key of :data:`LIGHTING`.
        duration_us: Length of the gesture in microseconds.
        seed: Seeds the "other" class's random motion and, for a new sensor, the sensor.
        sensor: The sensor after the previous gesture, or None to create one (at ``t0 - frame_us``).
        frame_us: Interval between rendered frames in microseconds.
        scene: What is drawn besides the hands, and the new sensor's threshold and hot pixels.

    Returns:
        The events and the sensor to pass to the next gesture.
    """
    rng = np.random.default_rng(seed)
    rng_wave = (rng.uniform(0.05, 0.15, 6), rng.uniform(0.5, 2.5, 6), rng.uniform(0, 2 * np.pi, 6))
    grid = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    motion = GESTURES[cls][1]
    times = np.arange(t0, t0 + duration_us + 1, frame_us)
    clock = duration_us / 1e6 if scene.per_second else 1.0  # motions' time unit: a second, or the gesture
    phases = np.arange(len(times)) / len(times) * clock
    frames = (render(dress(motion(u, user, rng_wave), scene, u, user), user, lighting, grid) for u in phases)
    if sensor is None:
        params = DvsParams(
            c_on=scene.threshold,
            c_off=scene.threshold,
            shot_noise_hz=LIGHTING[lighting][2],
            hot_pixels=scene.hot_pixels,
            hot_pixel_hz=scene.hot_pixel_hz,
            seed=seed,
        )
        sensor = DvsPixelArray(next(frames), times[0] - frame_us, params)
    return concatenate([sensor.step(f, t) for f, t in zip(frames, times)]), sensor


def trial_recording(
    user_id: int,
    lighting: str,
    seed: int,
    gesture_us: int = 1_500_000,
    rest_us: int = 300_000,
    frame_us: int = 4000,
    scene: str = "people",
) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """One trial: all 11 gestures in a random order with rests between; events and label rows.

    ``frame_us`` is the simulator's frame interval (event times are interpolated between frames);
    ``scene`` names one of :data:`SCENES`.

    Args:
        user_id: The subject's number; it seeds the subject's traits.
        lighting: Key of :data:`LIGHTING`.
        seed: Seeds the gesture order, the first gesture's start and each gesture's seed.
        gesture_us: Length of each gesture in microseconds.
        rest_us: Pause between gestures in microseconds.

    Returns:
        The events and one ``(class 1..11, start_us, end_us)`` label row per gesture.
    """
    rng = np.random.default_rng(seed)
    user = User.draw(np.random.default_rng(1000 + user_id))
    order = rng.permutation(len(CLASS_NAMES))
    chunks, rows, sensor = [], [], None
    t = 1_000_000 + int(rng.integers(0, 1000))
    for cls in order:
        events, sensor = gesture_events(
            int(cls),
            user,
            lighting,
            t,
            gesture_us,
            int(rng.integers(1 << 31)),
            sensor,
            frame_us,
            SCENES[scene],
        )
        chunks.append(events)
        rows.append((int(cls) + 1, t, t + gesture_us))
        t += gesture_us + rest_us
    return concatenate(chunks), rows


def write_trial(
    folder: Path,
    name: str,
    user_id: int,
    lighting: str,
    seed: int,
    gesture_us: int,
    frame_us: int,
    scene: str,
) -> None:
    """Simulate one trial and write ``<name>.aedat`` and ``<name>_labels.csv`` into ``folder``.

    Args:
        user_id: The subject's number.
        lighting: Key of :data:`LIGHTING`.
        seed: The trial's seed (see :func:`trial_recording`).
        gesture_us: Length of each gesture in microseconds.
        frame_us: The simulator's frame interval in microseconds.
        scene: Key of :data:`SCENES`.
    """
    events, rows = trial_recording(user_id, lighting, seed, gesture_us, frame_us=frame_us, scene=scene)
    write(folder / f"{name}.aedat", events, format="aedat31")
    (folder / f"{name}_labels.csv").write_text(
        "class,startTime_usec,endTime_usec\n" + "".join(f"{c},{s},{e}\n" for c, s, e in rows)
    )


def write_archive(
    path: str | os.PathLike,
    n_users: int = 12,
    n_test_users: int = 3,
    lightings: tuple[str, ...] = ("fluorescent", "led"),
    seed: int = 0,
    gesture_us: int = 1_500_000,
    progress: Callable[[int, int], None] | None = None,
    frame_us: int = 4000,
    workers: int = 1,
    scene: str = "people",
) -> Path:
    """Write a DVS128-Gesture-layout ``.tar.gz`` of synthetic trials and return its path.

    Users ``1..n_users - n_test_users`` are listed in ``trials_to_train.txt``, the rest in
    ``trials_to_test.txt``, like the real split by subject. ``workers`` > 1 simulates trials in
    that many processes; every trial has its own seed, so the archive's recordings do not depend on it.
    ``scene`` names one of :data:`SCENES`. Missing parent folders of ``path`` are created first.

    Args:
        n_users: Subjects; each records one trial per lighting.
        lightings: Keys of :data:`LIGHTING` to record under.
        gesture_us: Length of each gesture in microseconds.
        progress: Called with ``(trials done, trials in all)`` after each trial.
        frame_us: The simulator's frame interval in microseconds.
    """
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}; choose one of {sorted(SCENES)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)  # before minutes of simulation, not after
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "DvsGesture"
        folder.mkdir()
        train, test = [], []
        trials = [(u, light) for u in range(1, n_users + 1) for light in lightings]
        jobs = [
            (folder, f"user{u:02d}_{light}", u, light, seed * 7919 + k, gesture_us, frame_us, scene)
            for k, (u, light) in enumerate(trials)
        ]
        with process_pool(workers) if workers > 1 else contextlib.nullcontext() as pool:
            done = pool.map(write_trial, *zip(*jobs)) if pool else (write_trial(*job) for job in jobs)
            for k, _ in enumerate(done):
                if progress:
                    progress(k + 1, len(trials))
        for _, name, user_id, *_ in jobs:
            (test if user_id > n_users - n_test_users else train).append(f"{name}.aedat")
        (folder / "trials_to_train.txt").write_text("\n".join(train) + "\n")
        (folder / "trials_to_test.txt").write_text("\n".join(test) + "\n")
        (folder / "gesture_mapping.csv").write_text(
            "action,label\n" + "".join(f"{name},{i + 1}\n" for i, name in enumerate(CLASS_NAMES))
        )
        (folder / "README.txt").write_text(
            "SYNTHETIC data generated by neurodata.sim.gestures; not recorded by a sensor.\n"
        )
        with (
            atomic_output(path, permissions=SHARED, durable=False) as fileobj,
            tarfile.open(fileobj=fileobj, mode="w:gz", compresslevel=1) as tar,
        ):
            tar.add(folder, arcname="DvsGesture")
    return path
