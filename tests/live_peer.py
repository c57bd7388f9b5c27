"""dv-processing's NetworkWriter and NetworkReader, run in their own process by tests/test_live_peers.py.

Their constructors block while holding Python's GIL, so they cannot share a process with our
server or client. Usage (in the peer environment):

    python tests/live_peer.py write PORT COMPRESSION EVENTS.npz   # serve the events to one client
    python tests/live_peer.py read PORT COUNT OUT.npz             # read COUNT events from a server
"""

from __future__ import annotations

import os
import sys
import time

import dv_processing as dv
import numpy as np

COMPRESSIONS = {
    "none": dv.CompressionType.NONE,
    "lz4": dv.CompressionType.LZ4,
    "lz4_high": dv.CompressionType.LZ4_HIGH,
    "zstd": dv.CompressionType.ZSTD,
    "zstd_high": dv.CompressionType.ZSTD_HIGH,
}
DEADLINE_SECONDS = 15
BATCH = 5000


def write(port: int, compression: str, path: str) -> None:
    with np.load(path, allow_pickle=False) as z:
        t, x, y, p = z["t"], z["x"], z["y"], z["p"]
        width, height = int(z["width"]), int(z["height"])
    stream = dv.io.Stream.EventStream(0, "events", "neurodata-test", (width, height))
    stream.setCompression(COMPRESSIONS[compression])
    writer = dv.io.NetworkWriter("127.0.0.1", port, stream)
    print("listening", flush=True)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while writer.getClientCount() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    for start in range(0, len(t), BATCH):
        store = dv.EventStore()
        for i in range(start, min(start + BATCH, len(t))):
            store.push_back(int(t[i]), int(x[i]), int(y[i]), bool(p[i]))
        writer.writeEvents(store)
    while writer.getQueuedPacketCount() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(1.0)  # the last packet may still be compressing after it leaves the queue
    # the writer's destructor waits for its clients to hang up; leave without it, as a camera
    # that stops: the kernel still delivers what was sent, then closes the connection
    os._exit(0)


def read(port: int, count: int, path: str) -> None:
    reader = dv.io.NetworkReader("127.0.0.1", port)
    width, height = reader.getEventResolution()
    parts = []
    got = 0
    deadline = time.monotonic() + DEADLINE_SECONDS
    while got < count and time.monotonic() < deadline:
        batch = reader.getNextEventBatch()
        if batch is None or batch.isEmpty():
            if not reader.isRunning():
                break
            time.sleep(0.001)
            continue
        parts.append(batch.numpy())
        got += batch.size()
    events = np.concatenate(parts) if parts else np.zeros(0)
    np.savez(path, events=events, width=width, height=height)


if __name__ == "__main__":
    mode, port, arg, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if mode == "write":
        write(port, arg, out)
    else:
        read(port, int(arg), out)
