"""Numpy views of Arrow arrays, for the stages that work on raw masks and bytes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def bools(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as numpy bools; null counts as false."""
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


def text_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A string array's value offsets (from 0, int64) and its values' bytes, without copying.

    The bytes are a view of the array's data buffer: writable only when that buffer is mutable.
    """
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    return (offsets - offsets[0]).astype(np.int64), raw[offsets[0] : offsets[-1]]
