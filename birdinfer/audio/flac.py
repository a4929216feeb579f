"""A FLAC's length is a claim in its STREAMINFO block, not a fact.

A stream written to a pipe (`flac -`, ffmpeg) cannot seek back to fill in its total, so it says
0 ("unknown", which libsndfile reports as 2^63 frames); a damaged or edited header can say 3 s of
a 12 s stream, and libsndfile then stops reading after 3 s. So the decoder is shown the file with
that total read as 0: libsndfile then decodes the stream to its real end, and the rows follow
what was decoded.
"""

from __future__ import annotations

import io
import os

MAGIC = b"fLaC"
# The file starts with the magic, a 4-byte metadata block header and STREAMINFO (which must come
# first): its last 36 bits up to byte 26 hold the total samples (sample rate, channels and bits
# per sample share the bytes before them).
TOTAL_END = 26
TOTAL_FIRST_BYTE = 21  # only this byte's low 4 bits are the total's


def is_flac(handle) -> bool:
    """True when the open file is a native FLAC stream whose first block is STREAMINFO."""
    head = os.pread(handle.fileno(), 5, 0)
    return len(head) == 5 and head[:4] == MAGIC and head[4] & 0x7F == 0


class LengthHidden(io.RawIOBase):
    """A read-only view of an open FLAC file whose STREAMINFO total samples reads as 0.

    Only those bytes differ from the file; soundfile reads the view through its virtual I/O
    (read, seek, tell), so libsndfile never sees the claimed total.
    """

    def __init__(self, handle) -> None:
        super().__init__()
        self._handle = handle
        head = bytearray(os.pread(handle.fileno(), TOTAL_END, 0))
        if len(head) == TOTAL_END:
            head[TOTAL_FIRST_BYTE] &= 0xF0
            head[TOTAL_FIRST_BYTE + 1 : TOTAL_END] = bytes(TOTAL_END - TOTAL_FIRST_BYTE - 1)
        self._head = bytes(head)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def readinto(self, buffer) -> int:
        start = self._handle.tell()
        n = self._handle.readinto(buffer)
        if n and start < len(self._head):
            end = min(len(self._head), start + n)
            memoryview(buffer)[: end - start] = self._head[start:end]
        return n
