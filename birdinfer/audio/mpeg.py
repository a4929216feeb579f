"""The length of an MP3 from its MPEG frames, counted without decoding.

libsndfile never reads past the length in an MP3's header. When the first frame (with its
Xing/LAME tag) is damaged, that length is guessed from one frame's bitrate and can be a third of
the file; so the frames are counted here and a header that disagrees is an error.
"""

from __future__ import annotations

from pathlib import Path

_MPEG_KBPS = {  # (MPEG-1?, layer) -> kbit/s by bitrate index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame(header: bytes) -> tuple[int, int, int] | None:
    """(bytes, samples, sample rate) of the MPEG audio frame starting with `header`, or None."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = (header[1] >> 3) & 3, 4 - ((header[1] >> 1) & 3)
    bitrate, rate = header[2] >> 4, (header[2] >> 2) & 3
    if version == 1 or layer == 4 or rate == 3 or bitrate in (0, 15):
        return None
    mpeg1 = version == 3
    kbps = _MPEG_KBPS[(mpeg1, layer if mpeg1 or layer == 1 else 2)][bitrate - 1]
    hz, padding = _MPEG_RATES[version][rate], (header[2] >> 1) & 1
    if layer == 1:
        return (12000 * kbps // hz + padding) * 4, 384, hz
    samples = 1152 if mpeg1 or layer == 2 else 576
    return samples * 125 * kbps // hz + padding, samples, hz


def _next_mpeg_frame(handle, pos: int) -> int | None:
    """Offset of the first frame at or after `pos` that another frame follows (a resync)."""
    while True:
        handle.seek(pos)
        chunk = handle.read(1 << 16)
        if len(chunk) < 4:
            return None
        i = chunk.find(b"\xff")
        while 0 <= i <= len(chunk) - 4:
            frame = _mpeg_frame(chunk[i : i + 4])
            if frame is not None:
                handle.seek(pos + i + frame[0])
                follower = _mpeg_frame(handle.read(4))
                if follower is not None and follower[2] == frame[2]:
                    return pos + i
            i = chunk.find(b"\xff", i + 1)
        pos += len(chunk) - 3


def mpeg_seconds(path: Path) -> float:
    """Seconds of audio in the MPEG frames of a file, skipping damaged stretches as decoders do."""
    seconds = 0.0
    with open(path, "rb", buffering=1 << 16) as handle:
        tag = handle.read(10)
        start = 0
        if tag[:3] == b"ID3" and len(tag) == 10:  # ID3v2: a syncsafe size after 6 bytes
            start = 10 + (tag[6] << 21 | tag[7] << 14 | tag[8] << 7 | tag[9])
        pos = _next_mpeg_frame(handle, start)
        while pos is not None:
            handle.seek(pos)
            frame = _mpeg_frame(handle.read(4))
            if frame is None:
                pos = _next_mpeg_frame(handle, pos + 1)
                continue
            seconds += frame[1] / frame[2]
            pos += frame[0]
    return seconds
