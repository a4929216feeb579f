"""Windows of audio -> model input, in numpy: the log-mel front end and its check against the
libraries a model was trained with.

`LogMel` computes a batch of model inputs from the mel and image settings; `SharedFrontEnd`
computes each frame's mel power once for overlapping windows of one file. `compare_with_library`
and `compare_with_array` check it stage by stage against torchaudio or librosa, or against
features saved from training (a `CheckResult`), and `mel_filterbank` is the filterbank as
librosa draws it. The stages (spectrogram, filterbank, amplitude, normalize, image) and the
library reference stay inside.
"""

from birdinfer.frontend.logmel import LogMel
from birdinfer.frontend.scales import mel_filterbank
from birdinfer.frontend.shared import SharedFrontEnd

__all__ = [
    "CheckResult",
    "LogMel",
    "SharedFrontEnd",
    "compare_with_array",
    "compare_with_library",
    "mel_filterbank",
]

# The check is imported when first asked for: a run never needs it, and every process that
# scores imports this package.
_CHECK = ("CheckResult", "compare_with_array", "compare_with_library")


def __getattr__(name: str):
    if name in _CHECK:
        from birdinfer.frontend import check

        return getattr(check, name)
    raise AttributeError(f"module 'birdinfer.frontend' has no attribute {name!r}")
