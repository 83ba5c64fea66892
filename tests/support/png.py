"""Read an 8-bit PNG (greyscale, RGB or RGBA, not interlaced) into a numpy array: zlib, struct and
the five scanline filters of the PNG specification, enough to look at a browser's screenshot."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from numba import njit

__all__ = ["read_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}    # colour type -> samples per pixel


@njit(cache=False)
def _unfilter(raw, height, stride, bpp):
    out = np.zeros((height, stride), dtype=np.uint8)
    prior = np.zeros(stride, dtype=np.int64)
    pos = 0
    for y in range(height):
        kind = raw[pos]
        pos += 1
        row = np.zeros(stride, dtype=np.int64)
        for x in range(stride):
            value = np.int64(raw[pos + x])
            a = row[x - bpp] if x >= bpp else 0
            b = prior[x]
            c = prior[x - bpp] if x >= bpp else 0
            if kind == 1:
                value += a
            elif kind == 2:
                value += b
            elif kind == 3:
                value += (a + b) // 2
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                value += a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            row[x] = value & 0xFF
        pos += stride
        for x in range(stride):
            out[y, x] = row[x]
        prior = row
    return out


def read_png(path: str | Path) -> np.ndarray:
    """The image as ``(height, width, channels)`` uint8."""
    data = Path(path).read_bytes()
    if not data.startswith(_SIGNATURE):
        raise ValueError(f"{path} is not a PNG file")
    pos, header, idat = len(_SIGNATURE), None, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError(f"{path} has no IHDR chunk")
    width, height, depth, colour, _compression, _filter, interlace = header
    if depth != 8 or colour not in _CHANNELS or interlace:
        raise ValueError(f"{path}: only 8-bit, non-interlaced greyscale/RGB/RGBA PNGs are read "
                         f"(depth {depth}, colour type {colour}, interlace {interlace})")
    channels = _CHANNELS[colour]
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    pixels = _unfilter(raw, height, width * channels, channels)
    return pixels.reshape(height, width, channels)
