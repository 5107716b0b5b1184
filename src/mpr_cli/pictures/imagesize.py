"""The pixel size of a JPEG or PNG, read from its header (pure; no image library needed).

A picture ffmpeg wrote is checked to be what its kind says before it is uploaded: a PNG's
IHDR chunk, or a JPEG's first start-of-frame segment (SOF0..SOF15 but DHT, JPG and DAC).
Anything else, or a truncated file, is None.
"""

from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_NOT_SOF = (0xC4, 0xC8, 0xCC)  # DHT, JPG, DAC share the 0xC? range with the SOF markers


def image_size(data: bytes) -> tuple[tuple[int, int], str] | None:
    """((width, height), mime type) of a PNG or JPEG; None when it is neither or truncated."""
    if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return ((width, height), "image/png") if width and height else None
    if data.startswith(b"\xff\xd8"):
        found = _jpeg_size(data)
        return (found, "image/jpeg") if found else None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG's segments to its first start-of-frame; None if there is none."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2:at + 4])
        if 0xC0 <= marker <= 0xCF and marker not in _NOT_SOF:
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return (width, height) if width and height else None
        at += 2 + length
    return None
