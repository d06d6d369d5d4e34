"""Chunk encoding: columns of one series' samples (or rollup buckets) in a
compact, checksummed blob. Pure functions over numpy arrays; no I/O.

Layout (version 1): one byte version, one byte chunk type, then a zlib
stream (whose Adler-32 detects corrupt bytes) holding the columns. Each
column is one of:

- integers (timestamps, seqs, counts, series ids): the first value, then
  delta-of-delta (delta for ids), zigzagged, stored in the narrowest of
  1/2/4/8 bytes that holds them and byte-shuffled, so the runs of zeros
  regular data produces compress to almost nothing;
- floats that are decimals in disguise (psutil values rounded to 1-2
  places): scaled by 10**e to exact integers (checked to round-trip bit for
  bit), then encoded as integer deltas;
- other floats: the IEEE bits XORed with the previous value (Gorilla's
  idea), byte-shuffled, so slowly moving values leave zero high bytes.

docs/storage.md has the measurements behind these choices.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

VERSION = 1
RAW = 1  # columns: t, seq, value
AGGREGATE = 2  # columns: t, avg, min, max, count
HEAD = 3  # columns: series id, t, seq, value (the write-ahead rows of open chunks)

_INT_DELTA, _INT_DOD = 1, 2
_FLOAT_DECIMAL, _FLOAT_XOR = 3, 4
_MAX_DECIMALS = 6
_COLUMN_HEADER = struct.Struct("<BBBI")  # kind, width, extra (decimals), payload length
_WIDTHS = ((1, np.uint8), (2, np.uint16), (4, np.uint32), (8, np.uint64))
_ZLIB_LEVEL = 6


class ChunkCorrupt(ValueError):
    """The bytes are not a chunk this code wrote (corrupt or truncated)."""


@dataclass(frozen=True)
class RawColumns:
    t: np.ndarray  # int64 ms
    seq: np.ndarray  # int64
    value: np.ndarray  # float64


@dataclass(frozen=True)
class AggregateColumns:
    t: np.ndarray  # int64 bucket start ms
    avg: np.ndarray
    min: np.ndarray
    max: np.ndarray
    count: np.ndarray  # int64


@dataclass(frozen=True)
class HeadColumns:
    series: np.ndarray  # int64
    t: np.ndarray
    seq: np.ndarray
    value: np.ndarray


# ----- columns


def _zigzag(values: np.ndarray) -> np.ndarray:
    return ((values << 1) ^ (values >> 63)).view(np.uint64)


_ONE = np.uint64(1)


def _unzigzag(values: np.ndarray) -> np.ndarray:
    signed = (values >> _ONE).view(np.int64)
    signed ^= -(values & _ONE).view(np.int64)
    return signed


def _shuffled(values: np.ndarray) -> tuple[int, bytes]:
    """Narrowest width holding every value, bytes grouped by significance."""
    top = int(values.max()) if values.size else 0
    for width, dtype in _WIDTHS:
        if top < (1 << (8 * width)):
            narrow = values.astype(dtype)
            return width, narrow.view(np.uint8).reshape(-1, width).T.tobytes()
    raise AssertionError("unreachable")


def _unshuffled(payload: bytes, width: int, count: int) -> np.ndarray:
    dtype = dict(_WIDTHS).get(width)
    if dtype is None or len(payload) != width * count:
        raise ChunkCorrupt("column length does not match its header")
    if width == 1:  # one plane: nothing to unshuffle
        return np.frombuffer(payload, dtype=np.uint8).astype(np.uint64)
    planes = np.frombuffer(payload, dtype=np.uint8).reshape(width, count)
    return planes.T.copy().view(dtype).reshape(count).astype(np.uint64)


def _column(kind: int, width: int, extra: int, payload: bytes) -> bytes:
    return _COLUMN_HEADER.pack(kind, width, extra, len(payload)) + payload


def encode_ints(values: np.ndarray, delta_of_delta: bool = True) -> bytes:
    values = np.asarray(values, dtype=np.int64)
    diffs = np.diff(values, prepend=np.int64(0))
    if delta_of_delta and diffs.size > 1:
        diffs = np.concatenate((diffs[:1], diffs[1:2], np.diff(diffs[1:])))
    width, payload = _shuffled(_zigzag(diffs))
    return _column(_INT_DOD if delta_of_delta else _INT_DELTA, width, 0, payload)


def _decode_ints(kind: int, width: int, payload: bytes, count: int) -> np.ndarray:
    diffs = _unzigzag(_unshuffled(payload, width, count))
    if kind == _INT_DOD and count > 1:
        deltas = np.concatenate((diffs[:1], np.cumsum(diffs[1:])))
        return np.cumsum(deltas)
    return np.cumsum(diffs)


def _decimals(values: np.ndarray) -> int | None:
    """Smallest e with values == round(values * 10**e) / 10**e exactly.

    One test at the most decimals first (most columns that are not decimal
    fail here), then the smallest e from the common factors of ten of the
    scaled integers, checked once more."""
    if not values.size:
        return None
    top = 10.0**_MAX_DECIMALS
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.round(values * top)
    if not np.isfinite(scaled).all() or np.abs(scaled).max() >= 2.0**53:
        return None
    if not np.array_equal(scaled / top, values) or np.signbit(values[values == 0]).any():
        return None
    common = int(np.gcd.reduce(scaled.astype(np.int64)))
    decimals = _MAX_DECIMALS
    while decimals > 0 and common % 10 == 0 and common:
        common //= 10
        decimals -= 1
    if common == 0:
        decimals = 0
    scale = 10.0**decimals
    if np.array_equal(np.round(values * scale) / scale, values):
        return decimals
    return _MAX_DECIMALS


def encode_floats(values: np.ndarray) -> bytes:
    values = np.asarray(values, dtype=np.float64)
    decimals = _decimals(values)
    if decimals is not None:
        scaled = np.round(values * 10.0**decimals).astype(np.int64)
        width, payload = _shuffled(_zigzag(np.diff(scaled, prepend=np.int64(0))))
        return _column(_FLOAT_DECIMAL, width, decimals, payload)
    bits = values.view(np.uint64)
    xored = bits ^ np.concatenate((np.zeros(1, np.uint64), bits[:-1]))
    width, payload = _shuffled(xored)
    return _column(_FLOAT_XOR, width, 0, payload)


def _decode_floats(kind: int, width: int, extra: int, payload: bytes, count: int) -> np.ndarray:
    raw = _unshuffled(payload, width, count)
    if kind == _FLOAT_DECIMAL:
        return np.cumsum(_unzigzag(raw)) / 10.0**extra
    return np.bitwise_xor.accumulate(raw).view(np.float64)


def _read_column(body: bytes, offset: int, count: int) -> tuple[np.ndarray, int]:
    if offset + _COLUMN_HEADER.size > len(body):
        raise ChunkCorrupt("truncated column header")
    kind, width, extra, length = _COLUMN_HEADER.unpack_from(body, offset)
    offset += _COLUMN_HEADER.size
    payload = body[offset : offset + length]
    if len(payload) != length:
        raise ChunkCorrupt("truncated column")
    if kind in (_INT_DELTA, _INT_DOD):
        return _decode_ints(kind, width, payload, count), offset + length
    if kind in (_FLOAT_DECIMAL, _FLOAT_XOR):
        return _decode_floats(kind, width, extra, payload, count), offset + length
    raise ChunkCorrupt(f"unknown column kind {kind}")


# ----- chunks


_CHUNK_HEADER = struct.Struct("<BB")
_COUNT = struct.Struct("<I")


def _pack(chunk_type: int, count: int, columns: list[bytes], level: int = _ZLIB_LEVEL) -> bytes:
    body = _COUNT.pack(count) + b"".join(columns)
    return _CHUNK_HEADER.pack(VERSION, chunk_type) + zlib.compress(body, level)


def _open(blob: bytes, chunk_type: int) -> tuple[int, bytes]:
    """Check one chunk's header and decompress it: (sample count, body)."""
    if blob is None or len(blob) < _CHUNK_HEADER.size:
        raise ChunkCorrupt("shorter than a chunk header")
    version, found_type = _CHUNK_HEADER.unpack_from(blob)
    if version != VERSION or found_type != chunk_type:
        raise ChunkCorrupt(f"unexpected chunk version {version} / type {found_type}")
    try:
        body = zlib.decompress(bytes(blob[_CHUNK_HEADER.size :]))
    except zlib.error as e:
        raise ChunkCorrupt(f"bad compressed data ({e})") from None
    if len(body) < _COUNT.size:
        raise ChunkCorrupt("no sample count")
    (count,) = _COUNT.unpack_from(body)
    return count, body


def _unpack(blob: bytes, chunk_type: int, columns: int) -> list[np.ndarray]:
    count, body = _open(blob, chunk_type)
    offset, result = _COUNT.size, []
    for _ in range(columns):
        column, offset = _read_column(body, offset, count)
        result.append(column)
    if offset != len(body):
        raise ChunkCorrupt("trailing bytes after the columns")
    return result


def encode_raw(t: np.ndarray, seq: np.ndarray, value: np.ndarray) -> bytes:
    return _pack(RAW, len(t), [encode_ints(t), encode_ints(seq), encode_floats(value)])


def decode_raw(blob: bytes) -> RawColumns:
    t, seq, value = _unpack(blob, RAW, 3)
    return RawColumns(t, seq, value)


def encode_aggregate(columns: AggregateColumns) -> bytes:
    return _pack(
        AGGREGATE,
        len(columns.t),
        [
            encode_ints(columns.t),
            encode_floats(columns.avg),
            encode_floats(columns.min),
            encode_floats(columns.max),
            encode_ints(columns.count, delta_of_delta=False),
        ],
    )


def decode_aggregate(blob: bytes) -> AggregateColumns:
    t, avg, low, high, count = _unpack(blob, AGGREGATE, 5)
    return AggregateColumns(t, avg, low, high, count)


def encode_head(series: np.ndarray, t: np.ndarray, seq: np.ndarray, value: np.ndarray) -> bytes:
    # Ordered by series then time (a compacted head) the time and seq columns
    # are as regular as in a chunk; a flush's head row (one sample per
    # series, one time) is regular too.
    # Head rows live minutes: the fastest zlib level.
    return _pack(
        HEAD,
        len(t),
        [encode_ints(series, delta_of_delta=False), encode_ints(t), encode_ints(seq), encode_floats(value)],
        level=1,
    )


def decode_head(blob: bytes) -> HeadColumns:
    series, t, seq, value = _unpack(blob, HEAD, 4)
    return HeadColumns(series, t, seq, value)


# ----- many chunks of one series at once (history, stats)


@dataclass(frozen=True)
class _Column:
    kind: int
    width: int
    extra: int
    payload: bytes


def _parse(blob: bytes, chunk_type: int, columns: int) -> tuple[int, list[_Column]]:
    """Decompress and split one chunk into its columns (no decoding)."""
    count, body = _open(blob, chunk_type)
    offset, parsed = _COUNT.size, []
    for _ in range(columns):
        if offset + _COLUMN_HEADER.size > len(body):
            raise ChunkCorrupt("truncated column header")
        kind, width, extra, length = _COLUMN_HEADER.unpack_from(body, offset)
        offset += _COLUMN_HEADER.size
        payload = body[offset : offset + length]
        if len(payload) != length or length != width * count or dict(_WIDTHS).get(width) is None:
            raise ChunkCorrupt("column length does not match its header")
        if kind not in (_INT_DELTA, _INT_DOD, _FLOAT_DECIMAL, _FLOAT_XOR):
            raise ChunkCorrupt(f"unknown column kind {kind}")
        parsed.append(_Column(kind, width, extra, payload))
        offset += length
    if offset != len(body):
        raise ChunkCorrupt("trailing bytes after the columns")
    return count, parsed


def _segmented(op: np.ufunc, values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """op.accumulate restarted at every segment start (op is add or xor)."""
    running = op.accumulate(values)
    base = np.zeros(len(starts), dtype=values.dtype)
    base[1:] = running[starts[1:] - 1]
    segmented: np.ndarray = running - np.repeat(base, counts) if op is np.add else running ^ np.repeat(base, counts)
    return segmented


def _decode_column(parts: list[_Column], counts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    first = parts[0]
    raw = (
        np.concatenate([_unshuffled(p.payload, p.width, int(n)) for p, n in zip(parts, counts)])
        if any(p.width != 1 for p in parts)
        else np.frombuffer(b"".join(p.payload for p in parts), np.uint8).astype(np.uint64)
    )
    if first.kind == _FLOAT_XOR:
        return _segmented(np.bitwise_xor, raw, starts, counts).view(np.float64)
    diffs = _unzigzag(raw)
    if first.kind == _INT_DOD:
        inner = diffs.copy()
        inner[starts] = 0
        deltas = _segmented(np.add, inner, starts, counts)
        deltas[starts] = diffs[starts]
        return _segmented(np.add, deltas, starts, counts)
    values = _segmented(np.add, diffs, starts, counts)
    if first.kind == _FLOAT_DECIMAL:
        return values / 10.0**first.extra
    return values


def decode_many(
    blobs: list[bytes], chunk_type: int, columns: int, on_corrupt: Callable[[int, ChunkCorrupt], None]
) -> list[np.ndarray]:
    """The columns of many chunks, concatenated in order: one numpy pass per
    column instead of one per chunk (chunks of one series usually share
    their column formats; a column whose formats differ is decoded chunk by
    chunk). A chunk that does not parse is reported by index and left out."""
    parsed: list[tuple[int, list[_Column]]] = []
    for index, blob in enumerate(blobs):
        try:
            parsed.append(_parse(blob, chunk_type, columns))
        except ChunkCorrupt as e:
            on_corrupt(index, e)
    if not parsed:
        return [np.zeros(0, np.int64) if i == 0 else np.zeros(0) for i in range(columns)]
    counts = np.asarray([count for count, _ in parsed], np.int64)
    keep = counts > 0
    parsed = [p for p, k in zip(parsed, keep) if k]
    counts = counts[keep]
    if not parsed:
        return [np.zeros(0, np.int64) if i == 0 else np.zeros(0) for i in range(columns)]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    result = []
    for j in range(columns):
        parts = [cols[j] for _, cols in parsed]
        kinds = {(p.kind, p.extra if p.kind == _FLOAT_DECIMAL else 0) for p in parts}
        if len(kinds) == 1:
            result.append(_decode_column(parts, counts, starts))
        else:
            result.append(
                np.concatenate(
                    [_decode_column([p], np.asarray([n]), np.zeros(1, np.int64)) for p, n in zip(parts, counts)]
                )
            )
    return result
