"""Front ends of real BirdCLEF solutions, as named settings (docs/frontends.md cites each).

Plain data, no imports: `mel: {preset: NAME}` in a config expands here, and keys given beside it
win. Each entry holds the `mel:` and `image:` keys that reproduce the solution's model input for
one window, read from its code (the file is named under `source`). Where a solution trained on
longer windows (10-20 s), the window length is an `audio:` setting, not part of the preset.
"""

from __future__ import annotations

from typing import Any

# torchaudio.transforms.MelSpectrogram's defaults, and AmplitudeToDB's fixed ref 1.0 and amin 1e-10.
TORCHAUDIO = {
    "mel_scale": "htk",
    "norm": None,
    "pad_mode": "reflect",
    "filterbank": "torchaudio",
    "window": "torchaudio",
    "ref": 1.0,
    "amin": 1e-10,
}

# torchaudio 2048/512/128 over 20-16000 Hz, normalized, dB with top_db 80: the spectrogram of
# the 2023 1st, 2025 2nd (the same authors' code base) and 2026 5th (EfficientNetV2-S) places,
# which differ only in the normalisation after it.
TORCHAUDIO_2048_128_NORMALIZED = {
    **TORCHAUDIO,
    "n_fft": 2048,
    "hop_length": 512,
    "n_mels": 128,
    "fmin": 20,
    "fmax": 16000,
    "normalized": True,
    "top_db": 80.0,
}
SYDORSKYY_MEL = {
    **TORCHAUDIO_2048_128_NORMALIZED,
    "normalization": [{"step": "standardize", "ddof": 1}, "minmax"],
}

PRESETS: dict[str, dict[str, Any]] = {
    "librosa": {
        "summary": "librosa melspectrogram + power_to_db(ref=np.max, top_db=80), standardised "
        "per window: birdinfer's default and its demo model",
        "source": "birdinfer (birdinfer/demo/train.py)",
        "mel": {},
        "image": {},
    },
    "birdclef2021_2nd": {
        "summary": "torchaudio defaults, 2048/512, 256 mels, 16-16386 Hz (above Nyquist), dB 80, "
        "(x+80)/80, (time, mel) input",
        "source": "ChristofHenkel/kaggle-birdclef2021-2nd-place: models/ps_model_3.py, "
        "configs/default_config.py (mel_norm as its configs set it)",
        "mel": {
            **TORCHAUDIO,
            "n_fft": 2048,
            "hop_length": 512,
            "n_mels": 256,
            "fmin": 16,
            "fmax": 16386,
            "top_db": 80.0,
            "normalization": ["scale80"],
        },
        "image": {"layout": "time_mel"},
    },
    "birdclef2022_3rd": {
        "summary": "torchaudio spectrogram + HTK MelScale, 2048/512, 256 mels, 0-16000 Hz, "
        "no top_db, (x+80)/80, (time, mel) input",
        "source": "dazzle-me/birdclef-2022-3rd-place-solution: experiments/start_fold4_exp17_full/"
        "fold_4/saved_src/models/model.py, models/layers/random_power_melspec.py, "
        "config/base_config.yaml",
        "mel": {
            **TORCHAUDIO,
            "n_fft": 2048,
            "hop_length": 512,
            "n_mels": 256,
            "fmin": 0,
            "fmax": 16000,
            "top_db": None,
            "normalization": ["scale80"],
        },
        "image": {"layout": "time_mel"},
    },
    "birdclef2023_1st": {
        "summary": "torchaudio, 2048/512/128, 20-16000 Hz, normalized=True, dB 80, then "
        "standardise (torch std) and min-max",
        "source": "VSydorskyy/BirdCLEF_2023_1st_place: train_configs/eca_nfnet_l0_tune.py, "
        "code_base/models/blocks.py (NormalizeMelSpec, exportable), "
        "code_base/models/wave_clasifier.py",
        "mel": SYDORSKYY_MEL,
        "image": {},
    },
    "birdclef2023_2nd": {
        "summary": "torchaudio set to Slaney scale and norm, constant padding, 2048/417/128, "
        "0-16000 Hz, dB 80, (x+80)/80; 3 channels x, delta, delta-delta (along the mel axis)",
        "source": "LIHANG-HONG/birdclef2023-2nd-place-solution: modules/model.py, "
        "configs/sed_v2s.py, configs/common.py",
        "mel": {
            "mel_scale": "slaney",
            "norm": "slaney",
            "pad_mode": "constant",
            "window": "torchaudio",
            "ref": 1.0,
            "amin": 1e-10,
            "n_fft": 2048,
            "hop_length": 417,
            "n_mels": 128,
            "fmin": 0,
            "fmax": 16000,
            "top_db": 80.0,
            "normalization": ["scale80"],
        },
        "image": {
            "channels": 3,
            "channel_mode": "delta",
            "delta_style": "torchaudio",
            "delta_width": 5,
            "delta_axis": "mel",
        },
    },
    "birdclef2024_3rd": {
        "summary": "torchaudio, n_fft 1536, win_length 1024, hop 717, 224 mels, 90-14000 Hz, "
        "no top_db, (x-40)/80",
        "source": "TheoViel/kaggle_birdclef2024: src/main_cnn_2.py (melspec_config, norm "
        "'simple'), src/model_zoo/melspec.py (SimpleNorm)",
        "mel": {
            **TORCHAUDIO,
            "n_fft": 1536,
            "win_length": 1024,
            "hop_length": 717,
            "n_mels": 224,
            "fmin": 90,
            "fmax": 14000,
            "top_db": None,
            "normalization": [{"step": "scale", "add": -40.0, "divide": 80.0}],
        },
        "image": {},
    },
    "birdclef2025_2nd": {
        "summary": "as birdclef2023_1st (same authors): torchaudio 2048/512/128, 20-16000 Hz, "
        "normalized=True, dB 80, standardise and min-max",
        "source": "VSydorskyy/BirdCLEF_2025_2nd_place: all_configs/eca_nfnet_l0_Exp_noamp_64bs_"
        "5sec_BasicAug_SqrtBalancing_Radamlr1e3_CosBatchLR1e6_Epoch50_FocalBCELoss_LSF1005_"
        "FromXCV2Best_PseudoF2PT05MT01P04I3_MinorOverSampleV1.py, code_base/models/blocks.py",
        "mel": SYDORSKYY_MEL,
        "image": {},
    },
    "birdclef2025_8th": {
        "summary": "torchaudio, n_fft 2048, win_length 1024, hop 512, 192 mels, 40-14000 Hz, "
        "no top_db, standardise (torch std) and guarded min-max, (time, mel) input",
        "source": "StarrySky-SHT/BirdClef2025-8thSol: model.py (BirdClefSEDAttModel."
        "get_mel_gram, NormalizeMelSpec), config.py",
        "mel": {
            **TORCHAUDIO,
            "n_fft": 2048,
            "win_length": 1024,
            "hop_length": 512,
            "n_mels": 192,
            "fmin": 40,
            "fmax": 14000,
            "top_db": None,
            "normalization": [
                {"step": "standardize", "ddof": 1},
                {"step": "minmax", "flat_to_zero": True},
            ],
        },
        "image": {"layout": "time_mel"},
    },
    "birdclef2025_baseline": {
        "summary": "librosa 1024/512/128, 50-14000 Hz, power_to_db(ref=np.max), min-max, "
        "cv2.resize to 256 x 256 (INTER_LINEAR)",
        "source": "minkeymouse/birdclef2025: birdclef2025.py (a public 2025 baseline, not a "
        "top solution)",
        "mel": {
            "n_fft": 1024,
            "hop_length": 512,
            "n_mels": 128,
            "fmin": 50,
            "fmax": 14000,
            "normalization": [{"step": "minmax", "eps": 1e-8}],
        },
        "image": {"size": [256, 256], "resize": "cv2_linear"},
    },
    "birdclef2026_2nd": {
        "summary": "torchaudio defaults, 4096/1252/224, 0-16000 Hz, dB 80, min-max, 3 channels "
        "repeated (optional resize and ImageNet statistics are image: keys)",
        "source": "FlorentinGe/Birdclef2026-2ndplace: birdclef/transforms.py (MelTransform), "
        "birdclef/config.py",
        "mel": {
            **TORCHAUDIO,
            "n_fft": 4096,
            "hop_length": 1252,
            "n_mels": 224,
            "fmin": 0,
            "fmax": 16000,
            "top_db": 80.0,
            "normalization": ["minmax"],
        },
        "image": {"channels": 3, "channel_mode": "repeat"},
    },
    "birdclef2026_5th_b3": {
        "summary": "torchaudio 3072/420/384, 0-16000 Hz, normalized=True, dB 80, resized to "
        "384 x 384 (torchvision Resize: antialiased bilinear), (x+80)/80 clamped to [0, 1]",
        "source": "jak-ma/BirdCLEF2026-5th-solution: birdclef/data/transforms.py "
        "(LogMelSpectrogramTransform), scripts/effb3_stage2.py",
        "mel": {
            **TORCHAUDIO,
            "n_fft": 3072,
            "hop_length": 420,
            "n_mels": 384,
            "fmin": 0,
            "fmax": 16000,
            "normalized": True,
            "top_db": 80.0,
            "normalization": ["scale80"],
        },
        "image": {"size": [384, 384], "resize": "bilinear_antialias", "normalization": ["clamp"]},
    },
    "birdclef2026_5th_v2s": {
        "summary": "torchaudio 2048/512/128, 20-16000 Hz, normalized=True, dB 80, (x+80)/80 "
        "clamped to [0, 1]",
        "source": "jak-ma/BirdCLEF2026-5th-solution: birdclef/data/transforms.py "
        "(LogMelTransform), scripts/effv2s_stage1.py",
        "mel": {**TORCHAUDIO_2048_128_NORMALIZED, "normalization": ["scale80", "clamp"]},
        "image": {},
    },
}


def preset_settings(name: str) -> dict[str, Any]:
    """{"mel": {...}, "image": {...}} for a preset; KeyError names the known ones."""
    if name not in PRESETS:
        raise KeyError(f"no front-end preset '{name}' (known: {', '.join(sorted(PRESETS))})")
    entry = PRESETS[name]
    return {"mel": dict(entry["mel"]), "image": dict(entry["image"])}
