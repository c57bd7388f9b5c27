"""A write prefetch for Numba kernels that scatter into arrays bigger than the CPU caches.

A frame kernel's increments land on cells far apart; each one waits for its cache line unless the
line was asked for earlier. :func:`prefetch_write` asks for the line of a cell a number of events
ahead, so that many lines are on their way at once. It is LLVM's ``llvm.prefetch`` (an x86
``prefetchw``/``prefetcht0``, an ARM ``PRFM``, nothing on a target without one): a hint that never
faults, so the index need not be checked.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_WRITE = 1  # llvm.prefetch's rw argument: prepare the line for a write
_KEEP = 3  # locality: keep the line in every cache level
_DATA = 1  # cache type: data, not instructions


@intrinsic
def prefetch_write(typingctx, array, index):
    """Ask for the cache line of ``array[index]`` (a 1-D array) ahead of a write; any ``index`` will
    do: one outside the array is a hint the CPU drops."""
    if not isinstance(array, types.Array) or array.ndim != 1 or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(
            context, builder, array_type, view, [args[1]], wraparound=False, boundscheck=False
        )
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        builder.call(function, [builder.bitcast(pointer, byte_pointer), i32(_WRITE), i32(_KEEP), i32(_DATA)])
        return context.get_dummy_value()

    return types.void(array, index), codegen
