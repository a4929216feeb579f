"""`power @ filterbank.T` as a few small dense products over the bins each group of filters covers.

A triangular filter covers one contiguous run of bins, and neighbouring filters overlap, so the
dense product (128 x 1025 weights for the 2048-point preset) is ~98% multiplications by zero.
Consecutive filters are grouped into blocks, and each block is one BLAS matrix product
`spectrum[:, low:high] @ weights` over the bins its filters span. The grouping minimises
`filters x span` (multiply-adds per spectrum row) plus `CALL_COST` per product: a block pays
for the zeros inside it, a product pays for its call.

Why blocks, not one product per filter (the previous design) or one dense product: blocks took
the least CPU per window of the three, in 10 calls instead of 128 (docs/throughput.md,
"Figures behind the code's choices", has the figures and the CPU). The per-filter loop held
the GIL between its 128 calls (one wake-up of the thread per call once other threads wait for
the GIL); 10 calls leave the heavy work in BLAS, with the GIL released. The float32 sums run in
the BLAS kernel's order, which differs from the per-filter one in the last bit.
"""

from __future__ import annotations

import numpy as np

# One product's overhead, in multiply-adds per spectrum row: lower values make more calls and
# run no faster (docs/throughput.md, "Figures behind the code's choices").
CALL_COST = 1000


def block_groups(filterbank: np.ndarray, call_cost: float = CALL_COST) -> list[tuple[int, int]]:
    """Consecutive filter ranges [start, stop) minimising sum(filters x span) + call_cost each.

    An exact dynamic programme over the filters in order (n_mels**2 steps, done once).
    """
    n = filterbank.shape[0]
    spans = [_span(row) for row in filterbank]
    best = [0.0] + [np.inf] * n
    cut = [0] * (n + 1)
    for stop in range(1, n + 1):
        low, high = filterbank.shape[1], 0
        for start in range(stop - 1, -1, -1):
            if spans[start] is not None:
                low, high = min(low, spans[start][0]), max(high, spans[start][1])
            cost = best[start] + (stop - start) * max(0, high - low) + call_cost
            if cost < best[stop]:
                best[stop], cut[stop] = cost, start
    groups, stop = [], n
    while stop > 0:
        groups.append((cut[stop], stop))
        stop = cut[stop]
    return groups[::-1]


def _span(row: np.ndarray) -> tuple[int, int] | None:
    nonzero = np.flatnonzero(row)
    return (int(nonzero[0]), int(nonzero[-1]) + 1) if nonzero.size else None


class SparseFilterbank:
    """The filterbank as dense blocks of consecutive filters; empty filters give 0, as
    librosa's and torchaudio's do."""

    def __init__(self, filterbank: np.ndarray, call_cost: float = CALL_COST) -> None:
        self.n_mels, self.n_bins = filterbank.shape
        self.dense = all(_span(row) is not None for row in filterbank)
        # (low, high, weights (high - low, filters)) per block; an all-empty block has no bins.
        self.blocks = []
        for start, stop in block_groups(filterbank, call_cost):
            spans = [s for s in map(_span, filterbank[start:stop]) if s is not None]
            low = min((s[0] for s in spans), default=0)
            high = max((s[1] for s in spans), default=0)
            weights = np.ascontiguousarray(filterbank[start:stop, low:high].T, np.float32)
            self.blocks.append((low, high, weights))

    def projection(self, rows: int) -> Projection:
        """Buffers for `rows` spectrum rows and the views each block reads and writes."""
        return Projection(self, rows)

    def __call__(self, spectrum: np.ndarray) -> np.ndarray:
        flat = spectrum.reshape(-1, spectrum.shape[-1])
        projection = self.projection(flat.shape[0])
        projection.spectrum[...] = flat
        return projection.run().reshape(*spectrum.shape[:-1], self.n_mels).copy()


class Projection:
    """A spectrum buffer (rows, n_bins) to fill, and `run()` -> its mel (rows, n_mels)."""

    def __init__(self, bank: SparseFilterbank, rows: int) -> None:
        self.spectrum = np.empty((rows, bank.n_bins), np.float32)
        self.out = np.empty((rows, bank.n_mels), np.float32)
        # np.dot writes only into a contiguous `out`: one buffer per block, joined after.
        self._parts = [np.zeros((rows, w.shape[1]), np.float32) for _, _, w in bank.blocks]
        self._calls = [
            (self.spectrum[:, low:high], weights, part)
            for (low, high, weights), part in zip(bank.blocks, self._parts, strict=True)
            if high > low
        ]

    def run(self) -> np.ndarray:
        for spectrum, weights, part in self._calls:
            np.dot(spectrum, weights, out=part)
        return np.concatenate(self._parts, axis=1, out=self.out)
