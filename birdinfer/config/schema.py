"""The run configuration's schema: one frozen dataclass per stage under one root, with its
defaults and its validation.

Every value is validated once, here, with a message that names the offending key, so later
stages can trust what they are given. Nothing reads a global config: the root object is passed.
Reading YAML into these is birdinfer.config.loader's job; old spellings, birdinfer.config.legacy's.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from birdinfer.config.coerce import TaxonWeights, check, coerce, plain_fields

# Front-end steps after the dB (or log, PCEN) scaling, applied in order (birdinfer.frontend.normalize).
NormStepName = Literal["scale80", "scale", "standardize", "minmax", "clamp", "imagenet", "square"]
Activation = Literal["sigmoid", "softmax", "none"]
Combine = Literal["mean", "rank_mean"]
DuplicateStems = Literal["skip", "path"]
NonFinite = Literal["fail", "drop_member"]
Scope = Literal["window", "file"]
RankTies = Literal["first", "average"]
ProbePolicy = Literal["refuse", "fallback", "warn"]


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int = 32000
    window_seconds: float = 5.0
    # Decode this many seconds at a time, so memory does not grow with a file's length.
    block_seconds: float = 300.0
    # Extensions (lower case, with dot) picked up from the input folder.
    extensions: tuple[str, ...] = (".ogg", ".wav", ".flac", ".mp3")
    # Context windows: the model hears this much of the neighbours' audio on each side of every
    # window (its input is window + 2 x context seconds; rows stay one per window).
    context_seconds: float = 0.0
    # Shifted test-time augmentation: each window is also scored shifted by these seconds
    # (e.g. [-2.5, 0, 2.5]) and the probabilities are averaged. (0,) = no TTA.
    tta_shifts: tuple[float, ...] = (0.0,)
    # A header's length is a claim: one above this (or none at all, as in a FLAC written to a
    # pipe) is set aside and the length is learnt by decoding the stream.
    max_header_hours: float = 24.0
    # Each model input scaled to a peak of 1 before its front end ("peak": librosa.util.normalize,
    # the 2025 2nd place's "late normalize"; a silent input stays as it is). "none": as decoded.
    normalize: Literal["none", "peak"] = "none"
    # The last, partial window of a file: zero-padded at its end ("pad_end"), at its start so
    # that it holds the file's last seconds ("pad_start", as the 2025 2nd place), or dropped
    # ("drop": floor(duration / window) rows, as the 2026 2nd place's notebook; a file shorter
    # than one window keeps its one row, padded at its end).
    last_window: Literal["pad_end", "pad_start", "drop"] = "pad_end"
    # How files at another rate are resampled: soxr (HQ), or kaiser_fast, resampy's filter as
    # librosa applies it for BirdNET's tools (a BirdNET-only run at 48 kHz then hears every
    # file as birdnetlib does: docs/birdnet.md).
    resampler: Literal["soxr", "kaiser_fast"] = "soxr"

    def __post_init__(self) -> None:
        check(self.sample_rate >= 1000, "audio.sample_rate", "must be >= 1000 Hz")
        check(self.window_seconds > 0, "audio.window_seconds", "must be > 0")
        check(
            self.block_seconds >= self.window_seconds,
            "audio.block_seconds",
            "must be >= audio.window_seconds",
        )
        check(len(self.extensions) > 0, "audio.extensions", "must list at least one extension")
        check(self.context_seconds >= 0, "audio.context_seconds", "must be >= 0")
        check(len(self.tta_shifts) >= 1, "audio.tta_shifts", "must list at least one shift")
        check(
            all(abs(s) <= self.window_seconds for s in self.tta_shifts),
            "audio.tta_shifts",
            f"each shift must be within +/- audio.window_seconds ({self.window_seconds})",
        )
        check(self.max_header_hours > 0, "audio.max_header_hours", "must be > 0")

    @property
    def max_header_seconds(self) -> float:
        return 3600.0 * self.max_header_hours

    @property
    def window_samples(self) -> int:
        return round(self.sample_rate * self.window_seconds)

    @property
    def input_seconds(self) -> float:
        """Length of the audio the model hears per view: the window plus its context."""
        return self.window_seconds + 2 * self.context_seconds

    @property
    def input_samples(self) -> int:
        return round(self.sample_rate * self.input_seconds)

    @property
    def views(self) -> int:
        """Model inputs per window (one per TTA shift)."""
        return len(self.tta_shifts)


@dataclass(frozen=True)
class NormStep:
    """One normalisation step. In YAML a bare name (`- minmax`) or a mapping with its settings
    (`- {step: standardize, ddof: 1}`); unset settings take the defaults in the comments."""

    SHORTHAND: ClassVar[str] = "step"
    # `normalization: none` or null: no steps.
    EMPTY_SPELLINGS: ClassVar[tuple[Any, ...]] = (None, "none")

    step: NormStepName
    add: float | None = None  # scale: (x + add) / divide
    divide: float | None = None
    eps: float | None = None  # standardize: (x - mean) / (std + eps); minmax: / (max - min + eps)
    ddof: int = 0  # standardize: 0 as numpy's std, 1 as torch's Tensor.std()
    # minmax: true as the torch modules that skip eps and map a flat window to zeros
    flat_to_zero: bool = False
    low: float | None = None  # clamp: to [low, high] (0 and 1 by default)
    high: float | None = None
    mean: tuple[float, ...] | None = None  # imagenet: per channel (ImageNet's by default)
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        key = f"normalization step '{self.step}'"
        check(
            self.step != "scale" or (self.add is not None and bool(self.divide)),
            key,
            "needs add and a non-zero divide",
        )
        check(self.eps is None or self.eps >= 0, key, "eps must be >= 0")
        check(self.ddof in (0, 1), key, "ddof must be 0 or 1")
        for name in ("mean", "std"):
            value = getattr(self, name)
            check(value is None or len(value) == 3, key, f"{name} must list 3 values")

    def to_plain(self) -> str | dict[str, Any]:
        """A bare name when every setting is the default (as old cards and configs spell it)."""
        changed = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "step" and getattr(self, f.name) != f.default
        }
        if not changed:
            return self.step
        return {
            "step": self.step,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in changed.items()},
        }


@dataclass(frozen=True)
class PcenConfig:
    """librosa.pcen's settings (mel.amplitude: pcen); `input_scale` multiplies the mel power
    first (librosa's docs suggest 2**31 for audio in [-1, 1])."""

    gain: float = 0.98
    bias: float = 2.0
    power: float = 0.5
    time_constant: float = 0.4
    eps: float = 1e-6
    b: float | None = None
    max_size: int = 1
    input_scale: float = 1.0

    def __post_init__(self) -> None:
        check(
            self.gain >= 0 and self.bias >= 0 and self.power >= 0,
            "mel.pcen",
            "gain, bias and power must be >= 0",
        )
        check(
            self.eps > 0 and self.time_constant > 0, "mel.pcen", "eps and time_constant must be > 0"
        )
        check(self.b is None or 0 <= self.b <= 1, "mel.pcen.b", "must be in [0, 1]")
        check(self.max_size >= 1, "mel.pcen.max_size", "must be >= 1")


def as_steps(value: Any) -> tuple[NormStep, ...]:
    """The old single `normalization:` string (cards in the wild carry it) as a list of steps."""
    return coerce(tuple[NormStep, ...], value, "normalization")


@dataclass(frozen=True)
class MelConfig:
    """Log-mel settings; the same names as librosa's or torchaudio's arguments where one exists.
    Every default reproduces librosa (and birdinfer before these keys existed)."""

    # A config file never sets it: the loader gives the mel section audio.sample_rate, the one
    # sample rate of a run (a card's mel holds its file's). Built by hand, it must agree too.
    sample_rate: int = 32000
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 20.0
    fmax: float = 16000.0
    power: float = 2.0
    top_db: float | None = 80.0
    # dB reference: "max" (librosa's ref=np.max, per window) or a number (1.0 = torchaudio's default).
    ref: str | float = "max"
    normalization: tuple[NormStep, ...] = (NormStep("standardize"),)
    center: bool = True
    # A window shorter than n_fft, centred in the frame and zero-padded (torch and librosa alike).
    win_length: int | None = None
    # librosa's defaults; torchaudio's MelSpectrogram defaults are htk, null and reflect.
    mel_scale: Literal["slaney", "htk"] = "slaney"
    norm: Literal["slaney"] | None = "slaney"
    # Whose arithmetic computes the filter weights: librosa's (float64) or torchaudio's (float32
    # mel points, up to ~0.01 dB apart on filters narrower than a bin): a model trained on
    # torchaudio features wants "torchaudio".
    filterbank: Literal["librosa", "torchaudio"] = "librosa"
    # Whose arithmetic computes the Hann window: librosa's (scipy's float64 values, rounded once)
    # or torch.hann_window's (a float32 angle: 2/3 of the samples differ, by up to 2e-7). The
    # float32 FFT's rounding follows its input's bits: torchaudio-trained models want "torchaudio".
    window: Literal["librosa", "torchaudio"] = "librosa"
    pad_mode: Literal["constant", "reflect"] = "constant"
    # torchaudio's STFT normalisation: true (= "window", by the window's L2 norm) or "frame_length".
    normalized: bool | Literal["window", "frame_length"] = False
    # After the mel: "db" (librosa.power_to_db / torchaudio AmplitudeToDB), "log" (log(x + log_offset))
    # or "pcen" (librosa.pcen).
    amplitude: Literal["db", "log", "pcen"] = "db"
    # The dB floor; null: librosa's (1e-10 for power, 1e-5 for magnitude). torchaudio: 1e-10 always.
    amin: float | None = None
    log_offset: float = 1e-6
    pcen: PcenConfig = field(default_factory=PcenConfig)
    # Over what the top_db floor's maximum and the normalisation steps' statistics are taken:
    # each window on its own, or every window of the file at once ("file": torchaudio's
    # AmplitudeToDB on a file's (windows, n_mels, frames) batch, as the 2026 2nd place's
    # notebook ran it). A file longer than audio.block_seconds counts per decode block.
    top_db_scope: Scope = "window"
    normalization_scope: Scope = "window"

    def __post_init__(self) -> None:
        object.__setattr__(self, "normalization", as_steps(self.normalization))
        check(self.sample_rate >= 1000, "mel.sample_rate", "must be >= 1000 Hz")
        check(self.n_fft >= 16, "mel.n_fft", "must be >= 16")
        check(0 < self.hop_length <= self.n_fft, "mel.hop_length", "must be in 1..n_fft")
        check(self.n_mels >= 1, "mel.n_mels", "must be >= 1")
        check(0 <= self.fmin < self.fmax, "mel.fmin", "must be >= 0 and below mel.fmax")
        # fmax above Nyquist is allowed (torchaudio and librosa compute the filters the same way;
        # the front end warns), but not absurdly so: it is then a typo.
        check(
            self.fmax <= self.sample_rate,
            "mel.fmax",
            f"{self.fmax} is above the sample rate {self.sample_rate}",
        )
        check(self.power in (1.0, 2.0), "mel.power", "must be 1.0 (magnitude) or 2.0 (power)")
        check(self.top_db is None or self.top_db > 0, "mel.top_db", "must be > 0 or null")
        check(
            self.ref == "max" or (isinstance(self.ref, (int, float)) and self.ref > 0),
            "mel.ref",
            "must be 'max' or a positive number",
        )
        check(
            self.win_length is None or 1 <= self.win_length <= self.n_fft,
            "mel.win_length",
            "must be in 1..n_fft or null",
        )
        check(self.amin is None or self.amin > 0, "mel.amin", "must be > 0 or null")
        check(self.log_offset >= 0, "mel.log_offset", "must be >= 0")
        check(
            all(s.step != "imagenet" for s in self.normalization),
            "mel.normalization",
            "imagenet is per channel: list it under image.normalization (after the channels exist)",
        )

    @property
    def nyquist(self) -> float:
        return self.sample_rate / 2

    def frames_for(self, n_samples: int) -> int:
        """Frames produced for a window of `n_samples` (librosa's count)."""
        if self.center:
            return 1 + n_samples // self.hop_length
        return 1 + (n_samples - self.n_fft) // self.hop_length


FramePooling = Literal["max", "mean"]
# How a member's input is placed around the rows (birdinfer.scorer.geometry).
Geometry = Literal["centred", "sliding", "tiled"]


@dataclass(frozen=True)
class ImageConfig:
    """Steps after the normalisation, in this order: channels, resize, layout, then the steps in
    `normalization` (the ones that need the channels, such as imagenet, or a clamp after the resize).
    The defaults do nothing: one channel, (n_mels, frames) as computed."""

    channels: Literal[1, 3] = 1
    # "repeat": the map three times; "delta": x, delta and delta-delta.
    channel_mode: Literal["repeat", "delta"] = "repeat"
    # Deltas as torchaudio.functional.compute_deltas (win_length, replicate padding; delta-delta is
    # the delta of the delta) or librosa.feature.delta (width, Savitzky-Golay "interp" edges;
    # delta-delta is order 2). Along time, or along the mel axis as the 2023 2nd place computed them.
    delta_style: Literal["torchaudio", "librosa"] = "torchaudio"
    delta_width: int = 5
    delta_axis: Literal["time", "mel"] = "time"
    # [height, width] of the (mel, time) image; null: no resize.
    size: tuple[int, int] | None = None
    # "bilinear": torch.nn.functional.interpolate(mode="bilinear", align_corners=False);
    # "bilinear_antialias": the same with antialias=True (torchvision's Resize on tensors);
    # "cv2_linear": cv2.resize(..., interpolation=cv2.INTER_LINEAR).
    resize: Literal["bilinear", "bilinear_antialias", "cv2_linear"] = "bilinear"
    # "time_mel": the model takes (time, mel), as when a training loop permutes the mel.
    layout: Literal["mel_time", "time_mel"] = "mel_time"
    normalization: tuple[NormStep, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "normalization", as_steps(self.normalization))
        check(
            self.delta_width >= 3 and self.delta_width % 2 == 1,
            "image.delta_width",
            "must be an odd number >= 3",
        )
        check(
            self.size is None or (len(self.size) == 2 and min(self.size) >= 1),
            "image.size",
            "must be [height, width] or null",
        )
        check(
            self.channels == 3 or all(s.step != "imagenet" for s in self.normalization),
            "image.normalization",
            "imagenet needs image.channels: 3",
        )

    def output_shape(self, n_mels: int, frames: int) -> tuple[int, int, int]:
        """The model input without the batch axis, for a (n_mels, frames) mel."""
        height, width = self.size or (n_mels, frames)
        if self.layout == "time_mel":
            height, width = width, height
        return (self.channels, height, width)


@dataclass(frozen=True)
class ModelSpec:
    SHORTHAND: ClassVar[str] = "path"  # `models: [a.onnx]`

    # A .onnx or OpenVINO .xml file; "builtin:demo" is the demo model shipped in the package.
    path: str
    weight: float = 1.0
    # The output to score (a name from the model's card); null: the card's first.
    output: str | None = None
    # Overrides the output's own: null = none if the card says it holds probabilities, else
    # inference.activation.
    activation: Activation | None = None
    # A frame-wise output's row score: the max or mean over the frames of the row's span.
    frame_pooling: FramePooling = "max"
    # Where the member's input sits around each row (its length is the card's window_seconds).
    # null: the row plus audio.context_seconds each side, as every member before this key.
    # centred: the row centred in the member's own window, (window - row) / 2 each side.
    # sliding: one window per row, centred on it and stepped by the row length (zeros beyond
    # the file's edges, no TTA shifts); each frame of a frame-wise output is averaged over the
    # windows that hold it, then each row pools its own frames.
    # tiled: windows shorter than the row (BirdNET's 3 s) laid over each row from its start,
    # stepped by window - tile_overlap seconds, the last one ending at the row's end; the row
    # pools them (frame_pooling: max or mean). A waveform model whose card names another
    # sample rate gets its windows resampled to it (birdinfer.audio.kaiser, as BirdNET does).
    geometry: Geometry | None = None
    # Seconds shared by consecutive tiles (geometry: tiled).
    tile_overlap: float = 1.0
    # A file mapping the model's labels to submission columns (CSV: label,column; a label may
    # feed several columns, several labels one column by their max). Columns it does not map
    # are scored by the other members only. null: the model's class names are the columns.
    mapping: str | None = None
    # An output holding an embedding (the card says `holds: embedding`): written per row into
    # the per-window table (output.windows, parquet) for pseudo-labelling and distillation.
    embedding: str | None = None
    # Weights per taxon for rank blending (inference.taxonomy names each column's taxon), e.g.
    # {Aves: 0.25, Insecta: 1.25}; a taxon not listed, or a column the taxonomy does not
    # list, takes `weight`.
    taxon_weights: TaxonWeights | None = None

    def __post_init__(self) -> None:
        check(bool(self.path), "models.path", "must not be empty")
        check(
            self.taxon_weights is None or all(w >= 0 for _, w in self.taxon_weights),
            "models.taxon_weights",
            "weights must be >= 0",
        )
        check(self.weight > 0, "models.weight", "must be > 0")
        check(self.output is None or bool(self.output), "models.output", "must not be empty")
        check(self.mapping is None or bool(self.mapping), "models.mapping", "must not be empty")
        check(self.tile_overlap >= 0, "models.tile_overlap", "must be >= 0")
        check(
            self.embedding is None or bool(self.embedding), "models.embedding", "must not be empty"
        )

    def to_plain(self) -> dict[str, Any]:
        """Taxon weights as the mapping YAML writes."""
        plain = plain_fields(self)
        if self.taxon_weights is not None:
            plain["taxon_weights"] = dict(self.taxon_weights)
        return plain


@dataclass(frozen=True)
class InferenceConfig:
    batch_size: int = 16
    # Applied to outputs that hold logits (a member's `activation` overrides it).
    activation: Activation = "sigmoid"
    # How ensemble members combine: weighted mean of probabilities, or of per-class percentile
    # ranks over the whole run (rank blending: members with different calibrations mix fairly).
    combine: Combine = "mean"
    # Bounded queue between decode/mel and the models, in windows: memory stays flat.
    queue_windows: int = 256
    # Each streaming engine's feature workers (decode + mel threads) and its model lane's runtime
    # threads, on every executor; None = every core the engine runs on. (The number of task
    # threads or worker processes is executor.workers.)
    workers: int | None = None
    threads: int | None = None
    # A quantized variant whose card says the accuracy guard rejected it is refused unless true.
    allow_rejected_models: bool = False
    # A member whose outputs hold NaN or Inf for some of a file's windows: "fail" skips the file
    # (it gets placeholder rows when input.placeholder_rows_for_skipped is set); "drop_member"
    # scores it with the other members, with a warning (and fails it when none is left).
    non_finite: NonFinite = "fail"
    # Rank blending (combine: rank_mean): tied scores ranked in order of appearance ("first") or
    # given their mean rank ("average", pandas' rank(pct=True)); scores clipped to
    # [rank_clip, 1 - rank_clip] first (the 2026 2nd place: 1e-5, so tiny scores tie).
    rank_ties: RankTies = "first"
    rank_clip: float = 0.0
    # A taxonomy.csv (primary_label, class_name): each column's taxon, for models[].taxon_weights.
    taxonomy: str | None = None
    # Each member runs the probe in its card on this CPU before any audio is read. A member that
    # departs from it: "refuse" stops the run, "fallback" runs the float file beside it (the FP32
    # or FP16 IR of the same stem) in its place, "warn" runs it anyway with a warning.
    probe: ProbePolicy = "refuse"

    def __post_init__(self) -> None:
        check(0 <= self.rank_clip < 0.5, "inference.rank_clip", "must be in [0, 0.5)")
        check(self.batch_size >= 1, "inference.batch_size", "must be >= 1")
        check(self.queue_windows >= 1, "inference.queue_windows", "must be >= 1")
        check(self.workers is None or self.workers >= 1, "inference.workers", "must be >= 1")
        check(self.threads is None or self.threads >= 1, "inference.threads", "must be >= 1")


@dataclass(frozen=True)
class PostprocessConfig:
    """Applied per file, after the activation and the ensemble combination."""

    # Temporal smoothing over neighbouring windows, e.g. [0.1, 0.2, 0.4, 0.2, 0.1]; [] = none.
    # At a file's edges the kernel is renormalised over the windows that exist.
    smoothing_kernel: tuple[float, ...] = ()
    # File-level boost: score <- (1 - share) * score + share * (the class's max or mean over the
    # file). Same ranking as adding share / (1 - share) of the statistic, kept within [0, 1].
    file_boost: float = 0.0
    file_boost_stat: Literal["max", "mean"] = "max"
    # File-confidence scaling: each member's scores multiplied, per class, by the mean of that
    # class's top k scores over the file (the 2026 2nd place's CONF_SCALE, k = 2); 0 = off.
    # Applied to each member's rows before the members combine.
    file_scale_top_k: int = 0

    def __post_init__(self) -> None:
        check(self.file_scale_top_k >= 0, "postprocess.file_scale_top_k", "must be >= 0")
        kernel = self.smoothing_kernel
        check(
            not kernel
            or (len(kernel) % 2 == 1 and all(k >= 0 for k in kernel) and sum(kernel) > 0),
            "postprocess.smoothing_kernel",
            "must be empty or an odd number of non-negative weights with a positive sum",
        )
        check(0 <= self.file_boost < 1, "postprocess.file_boost", "must be in [0, 1)")


@dataclass(frozen=True)
class InputConfig:
    """What to score, and what a recording that cannot be scored still gives."""

    # When the input folder holds no audio (as while Kaggle saves a notebook): run on this folder
    # instead, or write a header-only submission when it is null.
    empty_input_fallback: str | None = None
    # At most this many fallback files (sorted): enough to check and time the path while Kaggle
    # saves the notebook, without spending the save run on a 10,000-file archive. null = all.
    empty_input_fallback_files: int | None = 20
    # Recordings in different folders with the same stem would give the same row ids. "skip":
    # each of them is reported and skipped; "path": row ids start with the path relative to the
    # input folder (`siteA/rec01_5`), for every file.
    duplicate_stems: DuplicateStems = "skip"
    # A recording that cannot be scored is reported and, by default, left out of the submission.
    # Kaggle rejects a submission that lacks any expected row id, so the edition configs give it
    # placeholder rows (budget.placeholder_score) instead: over the length its header declares,
    # or over `skipped_file_seconds` (the competition's nominal file length) when even the
    # header is unreadable.
    placeholder_rows_for_skipped: bool = False
    skipped_file_seconds: float | None = None


@dataclass(frozen=True)
class OutputConfig:
    # null: no submission, only the per-window table below (pseudo-labelling an archive).
    submission: str | None = "submission.csv"
    # Column order comes from here when given (class codes read as strings), else from the model.
    sample_submission: str | None = None
    progress: bool = True
    # Per-window table (file, stem, row_id, start/end seconds, one column per class): a .parquet
    # (needs pyarrow) or .csv path; null: none.
    windows: str | None = None
    # Keep each finished file's scores in a journal beside the output (`<output>.journal/`) and
    # reuse the ones already there: an interrupted run continues where it stopped.
    resume: bool = False

    def __post_init__(self) -> None:
        check(
            bool(self.submission) or bool(self.windows),
            "output.submission",
            "is null and so is output.windows: set at least one of them",
        )
        check(self.submission != "", "output.submission", "must be a path or null")
        if self.windows:
            suffix = Path(self.windows).suffix.lower()
            check(
                suffix in (".parquet", ".csv"),
                "output.windows",
                f"must end in .parquet or .csv, got '{self.windows}'",
            )
            check(
                suffix != ".parquet" or importlib.util.find_spec("pyarrow") is not None,
                "output.windows",
                "a .parquet table needs pyarrow (pip install 'birdinfer[parquet]'), "
                "or use a .csv path",
            )


@dataclass(frozen=True)
class CompetitionConfig:
    name: str = "demo"
    metric: Literal["macro_roc_auc", "padded_cmap"] = "macro_roc_auc"
    # The notebook's CPU limit. budget.minutes, when set, overrides it: read Config.budget_minutes.
    budget_minutes: float = 90.0
    # The hidden test set, for the benchmark's projections (shared/BIRDCLEF.md); null: unknown.
    test_files: int | None = None
    file_seconds: float | None = None

    def __post_init__(self) -> None:
        check(self.budget_minutes > 0, "competition.budget_minutes", "must be > 0")


@dataclass(frozen=True)
class ExecutorConfig:
    """Where files are scored. "engine": this process's streaming engine (decode and mel on a
    ThreadPoolExecutor overlapping one model lane). "tasks", "processes" and "dask": a
    file-level map of tasks of `files_per_task` files, fed to one engine per process, on a
    pool of task threads here, on worker processes (one per group of cores) or on a Dask
    cluster; each task's per-window results land in the journal folder beside the output.
    "auto": the run's plan chooses (birdinfer.runner.plan): the engine, or processes on
    many-core nodes."""

    kind: Literal["auto", "engine", "tasks", "processes", "dask"] = "auto"
    # Tasks scored at once on the thread pool (kind: tasks); None = every core. Worker
    # processes (kind: processes: one engine per group of cores, for many-core nodes); None =
    # groups of runner.plan.PROCESS_CORES cores. A Dask cluster's parallelism is its own.
    workers: int | None = None
    # An existing Dask scheduler, e.g. tcp://10.0.0.5:8786 (kind: dask).
    scheduler: str | None = None
    # Or start a LocalCluster of this many worker processes on this machine (kind: dask).
    local_workers: int | None = None
    files_per_task: int = 4

    def __post_init__(self) -> None:
        check(self.files_per_task >= 1, "executor.files_per_task", "must be >= 1")
        check(self.workers is None or self.workers >= 1, "executor.workers", "must be >= 1")
        check(
            self.local_workers is None or self.local_workers >= 1,
            "executor.local_workers",
            "must be >= 1",
        )
        check(
            not (self.scheduler and self.local_workers),
            "executor.scheduler",
            "is set and so is executor.local_workers: pick one",
        )
        check(
            self.kind == "dask" or not (self.scheduler or self.local_workers),
            "executor.kind",
            f"is '{self.kind}', but a scheduler or local workers are only for 'dask'",
        )


@dataclass(frozen=True)
class BudgetConfig:
    """The time guard (birdinfer.runner.time_guard): fit the ensemble into the CPU budget, finish in time."""

    enabled: bool = False
    minutes: float | None = None  # null: competition.budget_minutes
    # Kept back for start-up, writing the submission and the notebook's own overhead.
    reserve_minutes: float = 2.0
    safety: float = 1.2  # projections are multiplied by this before they must fit
    calibration_files: int = 3  # files measured before the first plan
    placeholder_score: float = 0.0  # for files the deadline leaves unscored

    def __post_init__(self) -> None:
        check(self.minutes is None or self.minutes > 0, "budget.minutes", "must be > 0")
        check(self.reserve_minutes >= 0, "budget.reserve_minutes", "must be >= 0")
        check(self.safety >= 1.0, "budget.safety", "must be >= 1.0")
        check(self.calibration_files >= 1, "budget.calibration_files", "must be >= 1")


@dataclass(frozen=True)
class DemoConfig:
    """The embedded demo: held-out synthetic soundscapes written to input_dir before the run,
    with their labels in `solution`, and scored after it."""

    files: int = 4
    seconds: float = 60.0
    seed: int = 20260
    solution: str = "birdinfer_demo/solution.csv"

    def __post_init__(self) -> None:
        check(self.files >= 1, "demo.files", "must be >= 1")
        check(self.seconds > 0, "demo.seconds", "must be > 0")


@dataclass(frozen=True)
class Config:
    input_dir: str = "test_soundscapes"
    models: tuple[ModelSpec, ...] = (ModelSpec("builtin:demo"),)
    input: InputConfig = field(default_factory=InputConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    # None: take the mel settings from the model file's metadata.
    mel: MelConfig | None = None
    # None: take the image steps (channels, resize, layout) from the model file's metadata.
    image: ImageConfig | None = None
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    competition: CompetitionConfig = field(default_factory=CompetitionConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    demo: DemoConfig | None = None

    def __post_init__(self) -> None:
        check(len(self.models) >= 1, "models", "must list at least one model")
        if any(spec.embedding for spec in self.models):
            check(
                str(self.output.windows or "").lower().endswith(".parquet"),
                "models.embedding",
                "embeddings go into the per-window table: set output.windows to a .parquet path",
            )
        if self.mel is not None:
            check(
                self.mel.sample_rate == self.audio.sample_rate,
                "mel.sample_rate",
                f"{self.mel.sample_rate} differs from audio.sample_rate {self.audio.sample_rate}",
            )

    @property
    def budget_minutes(self) -> float:
        """The CPU budget the time guard plans for: budget.minutes, else the competition's."""
        return self.budget.minutes or self.competition.budget_minutes
