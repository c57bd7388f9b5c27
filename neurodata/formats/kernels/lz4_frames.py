"""LZ4 frames decompressed many at a time without the GIL: a Numba kernel that calls the LZ4 frame
library python-lz4 already carries (``LZ4F_decompress``) for each payload of a batch, then
validates each decompressed AEDAT 4 EventPacket (:func:`~.aedat4.locate_numba`).

Calling ``lz4.frame.decompress`` once per packet takes and releases the GIL several times per
packet; a thread that decompresses while another unpacks then spends its time handing the GIL
back and forth. One kernel call per batch holds it once. The library's functions are looked up
in python-lz4's extension module; where that module does not export them (another build),
:data:`AVAILABLE` is False and callers keep ``lz4.frame.decompress``.
"""

from __future__ import annotations

import ctypes
import threading

import numba
import numpy as np

from . import aedat4

LZ4F_VERSION = 100  # the frame API version python-lz4 and every liblz4 since 1.7 accept
DONE, FAILED, NO_ROOM = 0, 1, 2  # how decompress_frames stopped


def _bind() -> ctypes.CDLL | None:
    """python-lz4's frame extension as a C library, its LZ4F functions registered for Numba; None
    where it does not export them, or where pointers are not 64-bit (the kernel passes them so)."""
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    try:
        import llvmlite.binding as llvm
        import lz4.frame._frame as frame_module

        library = ctypes.CDLL(frame_module.__file__)
        for name in ("LZ4F_decompress", "LZ4F_isError", "LZ4F_resetDecompressionContext"):
            llvm.add_symbol(name, ctypes.cast(getattr(library, name), ctypes.c_void_p).value)
        library.LZ4F_createDecompressionContext.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_uint]
        library.LZ4F_createDecompressionContext.restype = ctypes.c_size_t
        library.LZ4F_freeDecompressionContext.argtypes = [ctypes.c_void_p]
        library.LZ4F_isError.argtypes = [ctypes.c_size_t]
        return library
    except (ImportError, OSError, AttributeError):
        return None


_LIBRARY = _bind()
AVAILABLE = _LIBRARY is not None
_U64 = numba.types.uint64
# pointers travel as 64-bit integers (passed in the same registers as pointers on 64-bit ABIs)
_lz4f_decompress = numba.types.ExternalFunction("LZ4F_decompress", _U64(_U64, _U64, _U64, _U64, _U64, _U64))
_lz4f_is_error = numba.types.ExternalFunction("LZ4F_isError", numba.types.uint32(_U64))
_lz4f_reset = numba.types.ExternalFunction("LZ4F_resetDecompressionContext", numba.types.void(_U64))


class _Context:
    """One LZ4F decompression context (used by one thread at a time), freed with this object."""

    def __init__(self):
        pointer = ctypes.c_void_p()
        if _LIBRARY.LZ4F_isError(_LIBRARY.LZ4F_createDecompressionContext(ctypes.byref(pointer), LZ4F_VERSION)):
            raise MemoryError("LZ4F_createDecompressionContext failed")
        self.address = pointer.value

    def __del__(self, free=_LIBRARY.LZ4F_freeDecompressionContext if _LIBRARY else None):
        free(self.address)  # (bound at definition: module globals may be gone at interpreter exit)


_CONTEXTS = threading.local()  # a context must not be used by two threads at once


def context() -> int:
    """This thread's LZ4F decompression context (its address), made on first use."""
    if not hasattr(_CONTEXTS, "context"):
        _CONTEXTS.context = _Context()
    return _CONTEXTS.context.address


@numba.njit(cache=True, nogil=True)
def decompress_frames(dctx, block, starts, ends, scratch, located):
    """Decompress the LZ4 frames ``block[starts[i]:ends[i]]`` one after another into ``scratch``
    and locate each EventPacket in it: ``located[i] = (status, first struct position, count)``
    (:func:`~.aedat4.locate_numba`'s, positions in ``scratch``).

    Stops at the first frame that is not one valid whole frame (``FAILED``) or does not fit in
    what is left of ``scratch`` (``NO_ROOM``); returns ``(how, frames done)``.

    Args:
        dctx: an LZ4F decompression context (:func:`context`).
        block: the bytes holding the frames (uint8, contiguous).
        starts, ends: the frames' positions in ``block``.
        scratch: where to decompress (uint8, contiguous).
        located: (frames, 3) int64 output.
    """
    sizes = np.empty(2, np.uint64)  # LZ4F's in/out sizes: room for output, input available
    src = block.ctypes.data
    dst = scratch.ctypes.data
    off = 0
    for i in range(len(starts)):
        off = (off + 15) & ~15  # each packet starts aligned, as it would in a fresh buffer
        first = off
        pos = starts[i]
        while True:
            if off >= len(scratch):
                _lz4f_reset(dctx)
                return NO_ROOM, i
            sizes[0] = len(scratch) - off
            sizes[1] = ends[i] - pos
            hint = _lz4f_decompress(dctx, dst + off, sizes.ctypes.data, src + pos, sizes.ctypes.data + 8, 0)
            pos += sizes[1]
            off += sizes[0]
            if _lz4f_is_error(hint) or (sizes[0] == 0 and sizes[1] == 0):  # (no progress: never loop)
                _lz4f_reset(dctx)
                return FAILED, i
            if hint == 0:  # the frame is complete (bytes after it are ignored, as lz4.frame does)
                break
            if pos >= ends[i] and off < len(scratch):  # input used up, frame incomplete
                _lz4f_reset(dctx)
                return FAILED, i
        status, start, count = aedat4.locate_numba(scratch, first, off)
        located[i, 0] = status
        located[i, 1] = start
        located[i, 2] = count
    return DONE, len(starts)
