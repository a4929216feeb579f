"""The offline install: a wheelhouse is built with pip, then a fresh venv installs from it alone.

Needs pip to reach a package index to download the wheels (skipped when it cannot); the install
itself runs with --no-index and no pip configuration, as in a Kaggle notebook with the internet off.
"""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from birdinfer.demo import DEMO_MODEL
from birdinfer.kaggle import KAGGLE_HAS, WheelhouseSettings, build_wheelhouse
from birdinfer.kaggle.wheelhouse import canonical, runtime_requirements, target_mismatch

pytestmark = pytest.mark.slow
RUNTIME = {"numpy", "scipy", "threadpoolctl", "soundfile", "soxr", "onnxruntime", "openvino"}
RUNTIME |= {"pandas", "pyyaml", "tqdm"}


@pytest.fixture(scope="module")
def index_reachable(tmp_path_factory) -> None:
    probe = tmp_path_factory.mktemp("probe")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    try:
        done = subprocess.run(
            [*command, "--dest", str(probe), "threadpoolctl"], capture_output=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.skip("pip cannot reach a package index (timed out)")
    if done.returncode != 0:
        pytest.skip(f"pip cannot reach a package index: {done.stderr.decode()[-300:]}")


def projects(wheels: list[Path]) -> set[str]:
    return {canonical(w.name.split("-")[0]) for w in wheels}


def isolated_env(**extra: str) -> dict[str, str]:
    """No pip config, no PYTHONPATH, no PIP_* variables: only the wheelhouse can supply wheels."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    return {**env, "PIP_CONFIG_FILE": os.devnull, **extra}


@pytest.mark.skipif(not DEMO_MODEL.is_file(), reason="demo model not built yet")
def test_a_fresh_venv_installs_offline_from_the_wheelhouse_and_runs_the_demo(
    index_reachable, tmp_path
):
    wheels = tmp_path / "wheels"
    house = build_wheelhouse(
        WheelhouseSettings(
            wheels, python_version=None, platforms=(), exclude=(), all_dependencies=True
        )
    )
    assert {"birdinfer", *RUNTIME} <= projects(house.wheels)
    assert "--no-index --find-links" in (wheels / "README.txt").read_text()

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=isolated_env())
    python = str(venv / "bin" / "python")
    install = [
        python,
        "-m",
        "pip",
        "install",
        "--no-index",
        "--find-links",
        str(wheels),
        "birdinfer",
    ]
    done = subprocess.run(install, capture_output=True, text=True, env=isolated_env(), timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    probe = "import birdinfer; print(birdinfer.__file__); birdinfer.load_config('birdclef2025')"
    done = subprocess.run(
        [python, "-c", probe], cwd=run_dir, capture_output=True, text=True, env=isolated_env()
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(venv))  # the installed wheel, not this checkout

    demo = [python, "-m", "birdinfer", "infer", "--no-progress", "-q"]
    done = subprocess.run(
        demo, cwd=run_dir, capture_output=True, text=True, env=isolated_env(), timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "submission: birdinfer_demo/submission.csv (48 rows x 7 classes)" in done.stdout
    auc = float(done.stdout.split("macro_roc_auc on held-out soundscapes = ")[1].split()[0])
    assert auc >= 0.95, done.stdout
    submission = pd.read_csv(run_dir / "birdinfer_demo" / "submission.csv", dtype={"row_id": str})
    assert submission.shape == (48, 8) and submission.columns[0] == "row_id"


def test_the_default_kaggle_wheelhouse_leaves_out_what_the_image_has(index_reachable, tmp_path):
    house = build_wheelhouse(WheelhouseSettings(tmp_path / "kaggle"))
    names = projects(house.wheels)
    assert {"birdinfer", "onnxruntime", "openvino", "soxr", "threadpoolctl"} <= names
    assert not names & {canonical(n) for n in KAGGLE_HAS}
    assert all("cp312" in w.name or "py3-none" in w.name or "abi3" in w.name for w in house.wheels)
    required = {
        canonical(r.split(">")[0].split("=")[0])
        for r in runtime_requirements(house.birdinfer_wheel)
    }
    assert required == RUNTIME  # if birdinfer gains a dependency, decide whether Kaggle has it
    readme = (tmp_path / "kaggle" / "README.txt").read_text()
    assert "pip install --no-index --find-links /kaggle/input/birdinfer-wheels birdinfer" in readme
    assert "CPython 3.12" in readme
    assert target_mismatch(tmp_path / "kaggle", (3, 12)) is None
    assert "--python-version 3.11" in target_mismatch(tmp_path / "kaggle", (3, 11))


def test_one_folder_for_two_pythons_holds_each_ones_wheels(index_reachable, tmp_path):
    both = WheelhouseSettings(tmp_path / "both", python_version=("3.11", "3.12"))
    names = [w.name for w in build_wheelhouse(both).wheels]
    assert any("onnxruntime" in n and "cp311" in n for n in names)
    assert any("onnxruntime" in n and "cp312" in n for n in names)
    assert target_mismatch(tmp_path / "both", (3, 11)) is None
    assert target_mismatch(tmp_path / "both", (3, 12)) is None
    assert "CPython 3.11, 3.12, and this is Python 3.13" in target_mismatch(
        tmp_path / "both", (3, 13)
    )
