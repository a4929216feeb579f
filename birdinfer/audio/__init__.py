"""Recordings in, fixed-length mono windows out: the first stage of every run.

For a user: `list_audio_files`, `probe` (a file's header, as `AudioInfo`), `decode_windows` (a
whole file at the model's rate) and `WindowReader` (the same, streamed in groups of windows);
`row_ids`, `count_windows` and `window_end_label` name the 5 s rows the way BirdCLEF does.
For the layers above: `list_inputs` (a run's recordings, as `RunInputs`), `RowReader` with its
`Cut` and `Span` (one decode cut into every member's windows), `peak_normalize` and
`text_problem` (a name that cannot go into a row id). BirdNET's resampler (`kaiser`) and the
FLAC and MP3 length checks stay inside.
"""

from birdinfer.audio.cuts import Cut, RowReader, Span, peak_normalize
from birdinfer.audio.decode import AudioInfo, WindowReader, decode_windows, probe
from birdinfer.audio.inputs import RunInputs, list_audio_files, list_inputs
from birdinfer.audio.rows import count_windows, row_ids, text_problem, window_end_label

__all__ = [
    "AudioInfo",
    "Cut",
    "RowReader",
    "RunInputs",
    "Span",
    "WindowReader",
    "count_windows",
    "decode_windows",
    "list_audio_files",
    "list_inputs",
    "peak_normalize",
    "probe",
    "row_ids",
    "text_problem",
    "window_end_label",
]
