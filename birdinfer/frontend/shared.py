"""One front end over overlapping windows of one file: each frame's mel power computed once.

Members of one ensemble may hear the same audio through windows that overlap: 20 s sliding
windows stepped 5 s (each sample in four of them), or a 20 s member beside a 5 s one with the
same mel settings. A frame's mel power depends only on the n_fft samples it reads, so where two
windows' frames read the same samples they are one computation. Two things keep this from being
a plain slice of one file-wide spectrogram:

- frames line up only between windows whose starts differ by a multiple of hop_length (rows of
  5 s at 32 kHz are 312.5 hops of 512 apart, 500 hops of 320; with the 2025 1st place's hop of
  1252 no two rows line up at all);
- a window's first and last frames (those within n_fft // 2 of its edges, with `center`) read
  its padding (zeros or a reflection of the window), not the file's neighbouring audio.

So windows are grouped by their start modulo hop_length; a group whose windows overlap enough
gets a grid of frames computed once over the file's samples, from which each window takes its
interior frames, while its edge frames are computed on the window itself, as a per-window front
end would. Everything after the power (dB with ref="max" and top_db, PCEN, the normalisation
steps, the image steps) is per window and runs on each window's own frames, in
`LogMel.from_power`. The result equals the per-window computation up to float32 rounding.
Groups without enough overlap, and calls where no group has any, are computed per window.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from birdinfer.frontend.logmel import LogMel

# A group shares a grid when its windows ask for at least this many frames per grid frame:
# below it the grid's bookkeeping costs more than the frames it saves.
SHARE_RATIO = 1.5
# Grid frames per piece: pieces keep the framed copy and its spectrum cache-sized, as LogMel's
# own sub-batches do.
PIECE_FRAMES = 256


class SharedFrontEnd:
    """Mel power for windows given by their starts in one array of samples (windows of several
    lengths at once), sharing the frames that overlapping windows have in common."""

    def __init__(self, logmel: LogMel) -> None:
        self.logmel = logmel
        config = logmel.config
        self.hop = config.hop_length
        self.n_fft = config.n_fft
        self.pad = config.n_fft // 2 if config.center else 0
        # The grid's frames read [a, a + n_fft) of the samples: center=False framing.
        self.grid_logmel = LogMel(dataclasses.replace(config, center=False), logmel.image)

    def features(self, samples: np.ndarray, cuts: Sequence[tuple[np.ndarray, int]]) -> list:
        """Model inputs for each (starts, length) in `cuts`: (len(starts), c, h, w) arrays."""
        return [self.logmel.from_power(p) for p in self.power(samples, cuts)]

    def power(self, samples: np.ndarray, cuts: Sequence[tuple[np.ndarray, int]]) -> list:
        """Mel power (n, n_mels, frames) of the windows samples[start : start + length]."""
        groups = self._groups(cuts)
        if not any(self._worth_sharing(cuts, members) for members in groups.values()):
            return [self.logmel.power_mel(_windows(samples, s, n)) for s, n in cuts]
        frames = [self.logmel.config.frames_for(n) for _, n in cuts]
        mels = self.logmel.config.n_mels
        out = [
            np.empty((len(s), mels, f), np.float32) for (s, _), f in zip(cuts, frames, strict=True)
        ]
        for members in groups.values():
            if self._worth_sharing(cuts, members):
                self._from_grid(samples, cuts, members, out)
            else:
                for c, index in members:
                    starts, length = cuts[c]
                    out[c][index] = self.logmel.power_mel(_windows(samples, starts[index], length))
        return out

    # --- planning ---------------------------------------------------------------------------

    def _groups(self, cuts) -> dict[int, list[tuple[int, np.ndarray]]]:
        """Windows by start modulo hop: (cut, indices of its windows) per phase."""
        groups: dict[int, list[tuple[int, np.ndarray]]] = {}
        for c, (starts, _) in enumerate(cuts):
            phases = np.asarray(starts) % self.hop
            for phase in np.unique(phases):
                groups.setdefault(int(phase), []).append((c, np.flatnonzero(phases == phase)))
        return groups

    def _interior(self, length: int) -> tuple[int, int]:
        """First and last frame of a window of `length` samples that read only its samples."""
        first = math.ceil(self.pad / self.hop)
        last = (length - self.n_fft + self.pad) // self.hop
        return first, last

    def _anchors(self, cuts, members) -> tuple[int, int, int]:
        """The grid's first and last read position, and the frames its windows ask for."""
        low, high, asked = None, None, 0
        for c, index in members:
            starts, length = cuts[c]
            first, last = self._interior(length)
            if last < first:
                continue
            chosen = np.asarray(starts)[index]
            a = int(chosen.min()) + first * self.hop - self.pad
            b = int(chosen.max()) + last * self.hop - self.pad
            low = a if low is None else min(low, a)
            high = b if high is None else max(high, b)
            asked += len(index) * (last - first + 1)
        return low or 0, high or 0, asked

    def _worth_sharing(self, cuts, members) -> bool:
        low, high, asked = self._anchors(cuts, members)
        grid = (high - low) // self.hop + 1 if asked else 0
        return asked > 0 and asked >= SHARE_RATIO * grid

    # --- computing --------------------------------------------------------------------------

    def _from_grid(self, samples, cuts, members, out) -> None:
        low, high, _ = self._anchors(cuts, members)
        grid = self._grid(samples, low, (high - low) // self.hop + 1)
        for c, index in members:
            starts, length = cuts[c]
            first, last = self._interior(length)
            chosen = np.asarray(starts)[index]
            target = out[c]
            if last < first:  # too short for an interior frame: the window on its own
                target[index] = self.logmel.power_mel(_windows(samples, chosen, length))
                continue
            for k, start in zip(index, chosen, strict=True):
                t = (int(start) + first * self.hop - self.pad - low) // self.hop
                target[k, :, first : last + 1] = grid[:, t : t + last - first + 1]
            self._edges(samples, chosen, length, first, last, target, index)

    def _grid(self, samples: np.ndarray, low: int, count: int) -> np.ndarray:
        """(n_mels, count) mel power of the frames reading samples[low + t * hop :][:n_fft]."""
        pieces = -(-count // PIECE_FRAMES)
        piece_samples = (PIECE_FRAMES - 1) * self.hop + self.n_fft
        needed = (pieces - 1) * PIECE_FRAMES * self.hop + piece_samples
        segment = samples[low : low + needed]
        if segment.shape[0] < needed:  # the last piece's unused frames read zeros
            segment = np.concatenate([segment, np.zeros(needed - segment.shape[0], np.float32)])
        view = np.lib.stride_tricks.sliding_window_view(segment, piece_samples)
        power = self.grid_logmel.power_mel(view[:: PIECE_FRAMES * self.hop], frame_floors=True)
        return power.transpose(1, 0, 2).reshape(power.shape[1], -1)[:, :count]

    def _edges(self, samples, starts, length, first, last, target, index) -> None:
        """The frames that read a window's padding, computed on the window as LogMel would:
        a head long enough for frames [0, first) and a tail, hop-aligned, for (last, frames)."""
        if first > 0:
            head = (first - 1) * self.hop - self.pad + self.n_fft
            target[index, :, :first] = self.logmel.power_mel(_windows(samples, starts, head))[
                :, :, :first
            ]
        frames = target.shape[-1]
        if last + 1 < frames:
            skip = last + 1 - math.ceil(self.pad / self.hop)  # tail frame 0 is window frame skip
            tail = _windows(samples, starts + skip * self.hop, length - skip * self.hop)
            target[index, :, last + 1 :] = self.logmel.power_mel(tail)[:, :, last + 1 - skip :]


def _windows(samples: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """(len(starts), length) windows of `samples`: a strided view when the starts are evenly
    spaced (back-to-back rows: no copy of the batch before the front end's own), else a copy."""
    view = np.lib.stride_tricks.sliding_window_view(samples, length)
    starts = np.asarray(starts)
    steps = np.diff(starts)
    if len(starts) > 1 and steps[0] > 0 and (steps == steps[0]).all():
        return view[starts[0] : starts[-1] + 1 : steps[0]]
    return view[starts]
