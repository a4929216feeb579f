"""A folder of wheels to attach to an offline Kaggle notebook as a dataset.

It holds birdinfer's own wheel and the wheels of the runtime dependencies the Kaggle image lacks,
for a chosen Python version and platform (Kaggle's by default), so that the notebook installs with
`pip install --no-index --find-links /kaggle/input/<dataset> birdinfer`. Built with pip itself:
`pip wheel` for birdinfer, `pip download --only-binary=:all:` for the rest.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from birdinfer.atomic import write_text_atomic
from birdinfer.errors import BirdinferError

log = logging.getLogger(__name__)

# Kaggle's notebook image: CPython 3.12 on Ubuntu 22.04 (glibc 2.35), x86_64, since
# Kaggle/docker-python PR #1496 ("Python 3.12 bump"; BirdCLEF+ 2026 notebooks log 3.12.13). It
# was 3.11 before: `--python-version 3.11 --python-version 3.12` builds a folder for both.
KAGGLE_PYTHON = "3.12"
# Written beside the wheels: the notebook reads the target from it before calling pip.
TARGET_FILE = "wheelhouse.json"
# pip matches --platform tags literally (it widens manylinux2014 to 2010/1 only), so every
# glibc level a wheel may be tagged with is listed: manylinux 2.17 (= 2014) up to 2.35.
KAGGLE_PLATFORMS = (
    "manylinux2014_x86_64",
    *(f"manylinux_2_{minor}_x86_64" for minor in range(17, 36)),
)
# Runtime dependencies (and what they pull in) that the Kaggle image already carries: left out
# by default. pip installs from the folder only what is missing, so carrying more is safe and
# carrying less is not; these are the large ones that are certainly there.
KAGGLE_HAS = ("numpy", "scipy", "pandas", "pyyaml", "tqdm", "soundfile", "torch", "timm")


class WheelhouseError(BirdinferError, RuntimeError):
    """pip failed or the result is unusable; the message carries pip's own words."""


@dataclass(frozen=True)
class WheelhouseSettings:
    dest: Path
    source: Path | None = None  # birdinfer's source tree; default: this checkout
    # One CPython version, several (one folder that installs on each), or None: this one's.
    python_version: str | tuple[str, ...] | None = KAGGLE_PYTHON
    platforms: tuple[str, ...] = KAGGLE_PLATFORMS  # (): this machine's
    include: tuple[str, ...] = ()  # extra requirements, e.g. "pyarrow" for parquet tables
    exclude: tuple[str, ...] = KAGGLE_HAS  # project names left out of the folder
    all_dependencies: bool = False  # every runtime dependency, nothing excluded but `exclude`


@dataclass
class Wheelhouse:
    folder: Path
    birdinfer_wheel: Path
    wheels: list[Path]
    left_out: list[str] = field(default_factory=list)

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.wheels)


def build_wheelhouse(settings: WheelhouseSettings) -> Wheelhouse:
    """Build birdinfer's wheel, download the dependency wheels, write README.txt."""
    dest = settings.dest.resolve()
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.whl"):  # the folder holds exactly what this build chose
        old.unlink()
    own = build_own_wheel(settings.source or source_tree(), dest)
    excluded = {canonical(name) for name in settings.exclude}
    requirements = [
        r
        for r in runtime_requirements(own)
        if settings.all_dependencies or not _excluded(r, excluded)
    ]
    requirements += list(settings.include)
    for version in python_versions(settings) if requirements else ():
        _pip(
            [
                "download",
                "--only-binary=:all:",
                "--dest",
                str(dest),
                *_target(settings, version),
                *requirements,
            ]
        )
    left_out = []
    for wheel in sorted(dest.glob("*.whl")):
        name = canonical(wheel.name.split("-")[0])
        if name in excluded and wheel != own:
            wheel.unlink()
            left_out.append(name)
    house = Wheelhouse(dest, own, sorted(dest.glob("*.whl")), sorted(set(left_out)))
    write_readme(house, settings)
    write_target(house, settings)
    return house


def python_versions(settings: WheelhouseSettings) -> tuple[str | None, ...]:
    """The CPython versions the folder is for; (None,) for this interpreter's."""
    version = settings.python_version
    if version is None:
        return (None,)
    return (version,) if isinstance(version, str) else tuple(version)


def write_target(house: Wheelhouse, settings: WheelhouseSettings) -> Path:
    """`wheelhouse.json`: the Python versions and platforms the wheels are for. The notebook
    compares its own interpreter with it before calling pip (pip would only say that no
    version satisfies the requirement)."""
    this = ".".join(map(str, sys.version_info[:2]))
    data = {
        "python": [v or this for v in python_versions(settings)],
        "implementation": "cp",
        "platforms": list(settings.platforms) or ["this machine's"],
        "birdinfer_wheel": house.birdinfer_wheel.name,
        "rebuild": "python scripts/build_wheelhouse.py --python-version X.Y (see README.txt)",
    }
    return write_text_atomic(json.dumps(data, indent=1) + "\n", house.folder / TARGET_FILE)


def target_mismatch(folder: Path, version: tuple[int, int] | None = None) -> str | None:
    """Why the wheels in `folder` cannot install on this Python (None when they can or when
    the folder does not say). The notebook carries a copy of this check: it runs before
    birdinfer is installed."""
    info = folder / TARGET_FILE
    if not info.is_file():
        return None
    wanted = json.loads(info.read_text(encoding="utf-8")).get("python") or []
    here = ".".join(map(str, version or sys.version_info[:2]))
    if here in wanted:
        return None
    return (
        f"{folder} holds wheels for CPython {', '.join(wanted)}, and this is Python {here}: "
        f"rebuild it with `python scripts/build_wheelhouse.py --python-version {here}` "
        "and upload it again"
    )


def source_tree() -> Path:
    """The checkout this package runs from (the folder with pyproject.toml)."""
    root = Path(__file__).resolve().parents[2]  # birdinfer/kaggle/wheelhouse.py -> the checkout
    if not (root / "pyproject.toml").is_file():
        raise WheelhouseError(
            f"{root} is not a birdinfer source checkout (no pyproject.toml): pass --source"
        )
    return root


def build_own_wheel(source: Path, dest: Path) -> Path:
    """`pip wheel --no-deps` of the source tree; reuses an installed hatchling when there is one."""
    args = ["wheel", "--no-deps", "--wheel-dir", str(dest), str(source)]
    if importlib.util.find_spec("hatchling") is not None:
        args.insert(1, "--no-build-isolation")  # no index needed for the build backend
    _pip(args)
    wheels = sorted(dest.glob("birdinfer-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise WheelhouseError(f"pip wheel wrote no birdinfer wheel into {dest}")
    return wheels[-1]


def runtime_requirements(wheel: Path) -> list[str]:
    """Requires-Dist lines of a wheel without an `extra ==` marker (the runtime dependencies)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode("utf-8")
    requirements = []
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            requirements.append(line.split(":", 1)[1].strip())
    return requirements


def canonical(name: str) -> str:
    """PEP 503 normalised project name: 'PyYAML' and 'pyyaml' are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _excluded(requirement: str, excluded: set[str]) -> bool:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return bool(match) and canonical(match.group(1)) in excluded


def _target(settings: WheelhouseSettings, version: str | None) -> list[str]:
    args = []
    for platform in settings.platforms:
        args += ["--platform", platform]
    if version:
        args += ["--python-version", version, "--implementation", "cp"]
    return args


def _pip(args: Sequence[str]) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    log.info("running %s", " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise WheelhouseError(f"pip {args[0]} failed (exit {done.returncode}):\n{tail}")


def install_line(folder: str = "/kaggle/input/birdinfer-wheels") -> str:
    return f"pip install --no-index --find-links {folder} birdinfer"


def write_readme(house: Wheelhouse, settings: WheelhouseSettings) -> Path:
    this = ".".join(map(str, sys.version_info[:2]))
    python = " and ".join(v or this for v in python_versions(settings))
    platforms = ", ".join(settings.platforms) if settings.platforms else "this machine's"
    lines = [
        f"birdinfer wheelhouse: {house.birdinfer_wheel.name} and the wheels it needs beside it.",
        f"Target: CPython {python}; platform tags: {platforms}.",
        f"Built {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        "In a Kaggle notebook with the internet off, attach this folder as a dataset and run:",
        f"    {install_line()}",
        "(or `!pip ...` in a cell; submission/kaggle_notebook.ipynb does it for you).",
        "",
        f"Wheels ({house.size_bytes / 1e6:.1f} MB):",
        *(f"    {w.name}  ({w.stat().st_size / 1e6:.1f} MB)" for w in house.wheels),
    ]
    if settings.exclude:
        names = ", ".join(sorted({canonical(n) for n in settings.exclude}))
        why = "" if settings.all_dependencies else " (the Kaggle image carries them)"
        lines += ["", f"Left out{why}: {names}."]
    return write_text_atomic("\n".join(lines) + "\n", house.folder / "README.txt")
