"""Each front-end stage on its own: hand-computed examples, settings that keep old behaviour,
invariance to batching and threads."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from birdinfer.config import ImageConfig, MelConfig, NormStep, from_dict
from birdinfer.errors import ConfigError
from birdinfer.frontend import LogMel, mel_filterbank
from birdinfer.frontend.image import compute_deltas, resize_matrix
from birdinfer.frontend.normalize import apply_steps


def test_old_single_normalization_strings_still_mean_what_they_meant():
    assert MelConfig(normalization="standardize").normalization == (NormStep("standardize"),)
    assert MelConfig(normalization="none").normalization == ()
    assert MelConfig().normalization == (NormStep("standardize"),)
    card_like = from_dict({"mel": {"normalization": "scale80"}})
    assert card_like.mel.normalization == (NormStep("scale80"),)


def test_normalisation_steps_apply_in_order_on_a_hand_computed_example():
    x = np.array([[[-80.0, -40.0], [0.0, -20.0]]], np.float32)
    steps = (NormStep("scale80"), NormStep("square"), NormStep("clamp", low=0.1, high=0.9))
    np.testing.assert_allclose(apply_steps(x, steps), [[[0.1, 0.25], [0.9, 0.5625]]])
    scale = (NormStep("scale", add=-40.0, divide=80.0),)
    np.testing.assert_allclose(apply_steps(x, scale), [[[-1.5, -1.0], [-0.5, -0.75]]])
    torch_std = apply_steps(x, (NormStep("standardize", ddof=1),))
    assert torch_std.std(ddof=1) == pytest.approx(1.0, abs=1e-5)


def test_guarded_minmax_maps_a_flat_window_to_zeros_and_plain_minmax_does_not_divide_by_zero():
    flat = np.full((1, 2, 3), -100.0, np.float32)
    assert (apply_steps(flat, (NormStep("minmax", flat_to_zero=True),)) == 0).all()
    assert np.isfinite(apply_steps(flat, (NormStep("minmax"),))).all()


def test_imagenet_uses_each_channels_statistics():
    x = np.full((1, 3, 1, 1), 0.5, np.float32)
    out = apply_steps(x, (NormStep("imagenet"),))
    np.testing.assert_allclose(
        out[0, :, 0, 0],
        [(0.5 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.5 - 0.406) / 0.225],
        rtol=1e-6,
    )


def test_imagenet_is_refused_before_the_channels_exist():
    with pytest.raises(ConfigError, match="image.normalization"):
        from_dict({"mel": {"normalization": ["imagenet"]}})
    with pytest.raises(ConfigError, match="channels"):
        from_dict({"image": {"normalization": ["imagenet"]}})


def test_deltas_of_a_ramp_are_its_slope_inside_and_replicate_at_the_edges():
    ramp = np.arange(10, dtype=np.float32)[None, None] * 2.0
    delta = compute_deltas(ramp, 5, -1)
    np.testing.assert_allclose(delta[0, 0, 2:-2], 2.0, rtol=1e-6)
    assert delta[0, 0, 0] < 2.0  # the replicated edge flattens the slope


def test_resize_weights_sum_to_one_and_identity_size_is_the_identity():
    for method in ("bilinear", "bilinear_antialias", "cv2_linear"):
        matrix = resize_matrix(313, 256, method)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(resize_matrix(7, 7, "bilinear"), np.eye(7))


def test_image_output_shape_follows_channels_size_and_layout():
    image = ImageConfig(channels=3, size=(224, 512), layout="time_mel")
    assert image.output_shape(128, 313) == (3, 512, 224)
    frontend = LogMel(MelConfig(), image)
    assert frontend(np.zeros((2, 160000), np.float32)).shape == (2, 3, 512, 224)


def test_fmax_above_nyquist_warns_and_leaves_the_top_filters_empty(caplog):
    with caplog.at_level(logging.WARNING, logger="birdinfer.frontend.scales"):
        fb = mel_filterbank(32000, 2048, 256, 16, 16386, "htk", None)
    assert "Nyquist" in caplog.text
    assert fb.shape == (256, 1025) and fb[-1].sum() < fb[-40].sum()


def test_fmax_above_the_sample_rate_is_refused():
    with pytest.raises(ConfigError, match="mel.fmax"):
        MelConfig(fmax=40000.0)


def test_thread_count_and_batch_size_do_not_change_features():
    audio = np.random.default_rng(3).standard_normal((6, 160000)).astype(np.float32) * 0.1
    config = from_dict({"mel": {"preset": "birdclef2023_2nd"}})
    frontend = LogMel(config.mel, config.image)
    together = frontend(audio)
    one_by_one = np.concatenate([frontend(audio[i : i + 1]) for i in range(6)])
    with ThreadPoolExecutor(3) as pool:
        threaded = np.concatenate(
            list(pool.map(frontend, [audio[i : i + 2] for i in range(0, 6, 2)]))
        )
    np.testing.assert_array_equal(together, threaded)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_reflect_padding_differs_from_constant_only_near_the_edges():
    audio = np.random.default_rng(4).standard_normal((1, 160000)).astype(np.float32)
    constant = LogMel(MelConfig(normalization="none")).power_mel(audio)
    reflect = LogMel(MelConfig(normalization="none", pad_mode="reflect")).power_mel(audio)
    np.testing.assert_array_equal(constant[..., 2:-2], reflect[..., 2:-2])
    assert not np.allclose(constant[..., 0], reflect[..., 0])


def test_file_scope_takes_the_db_floor_and_normalisation_over_every_window():
    """torchaudio's AmplitudeToDB(top_db) on a 3-D batch floors every window at the batch's
    maximum - top_db (the 2026 2nd place's notebook); scope file does that, window does not."""
    torch = pytest.importorskip("torch")
    transforms = pytest.importorskip("torchaudio.transforms")
    from birdinfer.frontend.amplitude import power_to_db

    rng = np.random.default_rng(0)
    power = (rng.random((3, 16, 20)) * np.array([1.0, 1e-6, 1e-3])[:, None, None]).astype(
        np.float32
    )
    torch_db = transforms.AmplitudeToDB(top_db=80)(torch.from_numpy(power)).numpy()
    settings = {"ref": 1.0, "amin": 1e-10, "top_db": 80.0}
    file_db = power_to_db(power, MelConfig(**settings, top_db_scope="file"))
    assert np.abs(file_db - torch_db).max() < 1e-4
    window_db = power_to_db(power, MelConfig(**settings))
    assert np.abs(window_db - torch_db).max() > 1
    minmax = (NormStep("minmax"),)
    over_file = apply_steps(file_db, minmax, "file")
    assert over_file.min() == 0 and abs(over_file.max() - 1) < 1e-6
    assert over_file[1].max() < 0.5  # the quiet window stays quiet against the file's range
    assert abs(apply_steps(file_db, minmax)[1].max() - 1) < 1e-6
