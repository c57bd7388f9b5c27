"""Three N-MNIST records to three events with one 16-byte load and three 16-byte byte shuffles.

A 5-byte record becomes a 13-byte event (``t`` int64, ``x`` and ``y`` uint16, ``p`` uint8, packed):
before the first time-overflow marker every output byte is an input byte, a masked input byte, the
polarity bit, or zero. :func:`decode_three` does that for three records at once as vector shuffles
(``pshufb`` on x86, ``tbl`` on ARM), where the scalar kernel spends a load or a store per field.
It is exact only on a little-endian machine (:data:`AVAILABLE`), where ``t``'s bytes come low first.
"""

from __future__ import annotations

import sys

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

AVAILABLE = sys.byteorder == "little"

RECORD = 5
EVENT = 13  # bytes of the packed EVENT_DTYPE
GROUP = 3  # records per call: 15 input bytes fit one 16-byte load
INPUT_BYTES = 16  # read from the first record's byte (one byte past the third record)
OUTPUT_BYTES = 48  # written from the first event's byte: 39 bytes of events, then 9 the next call overwrites
OVERFLOW_Y = 240

_ZERO = 16  # a shuffle index past the loaded vector: picks a byte of the zero vector
# the source of each of an event's 13 bytes: (record byte, AND mask, take the top bit)
_EVENT_BYTES = (
    (4, 0xFF, False),  # t, low byte
    (3, 0xFF, False),  # t, middle byte
    (2, 0x7F, False),  # t, top 7 bits
    *((None, 0, False),) * 5,  # t's upper five bytes: zero
    (0, 0xFF, False),  # x
    (None, 0, False),
    (1, 0xFF, False),  # y
    (None, 0, False),
    (2, 0x00, True),  # p: bit 7 of the third byte
)

_BYTE = ir.IntType(8)
_VECTOR = ir.VectorType(_BYTE, 16)
_INDEX_VECTOR = ir.VectorType(ir.IntType(32), 16)


def _output_plan(vector: int) -> tuple[list[int], list[int], list[int]]:
    """For output bytes ``16 * vector ...`` of a group: shuffle indices, AND masks and top-bit masks."""
    indices, and_masks, top_bit_masks = [], [], []
    for position in range(16 * vector, 16 * vector + 16):
        event, field = divmod(position, EVENT)
        source, and_mask, top_bit = _EVENT_BYTES[field] if event < GROUP else (None, 0, False)
        indices.append(_ZERO if source is None else RECORD * event + source)
        and_masks.append(and_mask)
        top_bit_masks.append(1 if top_bit else 0)
    return indices, and_masks, top_bit_masks


_PLANS = [_output_plan(vector) for vector in range(OUTPUT_BYTES // 16)]
_Y_LANES = [1 if lane % RECORD == 1 and lane < RECORD * GROUP else 0 for lane in range(16)]
_Y_LANE_BITS = sum(bit << lane for lane, bit in enumerate(_Y_LANES))  # the loaded bytes that are a record's y


def _vector_pointer(context, builder, array_type, array_value, byte_index):
    view = context.make_array(array_type)(context, builder, array_value)
    pointer = cgutils.get_item_pointer(
        context, builder, array_type, view, [byte_index], wraparound=False, boundscheck=False
    )
    return builder.bitcast(pointer, _VECTOR.as_pointer())


def _is_byte_array(array) -> bool:
    return isinstance(array, types.Array) and array.ndim == 1 and array.dtype == types.uint8


@intrinsic
def decode_three(typingctx, records, record_byte, events, event_byte):
    """Write the events of the three records at ``records[record_byte:]`` to ``events[event_byte:]``.

    Reads :data:`INPUT_BYTES` and writes :data:`OUTPUT_BYTES` bytes (the caller keeps both inside the
    arrays; nothing is checked). Times are the records' 23-bit times: exact while no overflow marker
    came before. Returns True when one of the three is an overflow marker (``y == 240``); the bytes
    written are then not events, and the caller decodes the three records the scalar way.

    Args:
        typingctx: Numba's typing context (Numba passes it; a kernel calls with the four below).
        records: The N-MNIST file bytes (1-D ``uint8``).
        record_byte: Where the first record starts.
        events: The output events viewed as bytes (1-D ``uint8``, packed 13-byte events).
        event_byte: Where the first event goes.
    """
    if not (_is_byte_array(records) and _is_byte_array(events)):
        return None
    if not (isinstance(record_byte, types.Integer) and isinstance(event_byte, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        records_type, _, events_type, _ = signature.args
        loaded = builder.load(_vector_pointer(context, builder, records_type, args[0], args[1]), align=1)
        zero = ir.Constant(_VECTOR, None)
        seven = ir.Constant(_VECTOR, [7] * 16)
        out = _vector_pointer(context, builder, events_type, args[2], args[3])
        for vector, (indices, and_masks, top_bit_masks) in enumerate(_PLANS):
            shuffled = builder.shuffle_vector(loaded, zero, ir.Constant(_INDEX_VECTOR, indices))
            kept = builder.and_(shuffled, ir.Constant(_VECTOR, and_masks))
            top_bits = builder.and_(builder.lshr(shuffled, seven), ir.Constant(_VECTOR, top_bit_masks))
            pointer = builder.gep(out, [ir.Constant(ir.IntType(64), vector)]) if vector else out
            builder.store(builder.or_(kept, top_bits), pointer, align=1)
        is_marker = builder.icmp_unsigned("==", loaded, ir.Constant(_VECTOR, [OVERFLOW_Y] * 16))
        bits = builder.bitcast(is_marker, ir.IntType(16))
        markers = builder.and_(bits, ir.Constant(ir.IntType(16), _Y_LANE_BITS))
        return builder.icmp_unsigned("!=", markers, ir.Constant(ir.IntType(16), 0))

    return types.boolean(records, record_byte, events, event_byte), codegen
