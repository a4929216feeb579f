"""Model files put into place (`card set`, `export`): whole or not at all, with the mode the file
had, through symlinks, and with no temporary file left beside it even by a kill.

birdinfer.output.atomic writes run outputs; a model file differs in three ways. It is often
shared or read-only on purpose, so replacing it keeps its mode (and owner, where allowed); a new
one gets what an ordinary write gives (the umask). A symlink names the file to change, so the
link's target is replaced and the link kept. And a model is tens of MB: the data goes into an
unnamed file (Linux's O_TMPFILE) that gets a name only for the instant before the rename, so a
SIGKILL mid-write leaves nothing behind (elsewhere a named temporary, removed on any exception).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from birdinfer.errors import ModelError


def real_target(path: str | Path) -> Path:
    """The file a write to `path` should change: a symlink's target (followed all the way)."""
    return Path(os.path.realpath(path))


def check_writable_target(path: str | Path) -> None:
    """Refuse a destination that cannot take a model file: a folder, or a missing parent."""
    target = real_target(path)
    if target.is_dir():
        raise ModelError(f"{path}: is a folder; name the model file to write")
    if not target.parent.is_dir():
        raise ModelError(f"{path}: its folder {target.parent} does not exist")


def replace_files(pairs: Sequence[tuple[Path, Path]]) -> list[Path]:
    """Copy each (source, destination) into place, in order, each one whole (an IR: the .bin
    before the .xml that names it). A destination's file keeps its mode."""
    placed = []
    for source, destination in pairs:
        with open(source, "rb") as handle:
            placed.append(write_model_file(destination, lambda out, h=handle: _copy(h, out)))
    return placed


def write_model_file(path: str | Path, write: Callable) -> Path:
    """Call `write(handle)` on an unnamed file beside `path`'s target, then rename it into
    place. Returns the path written (a symlink's target)."""
    check_writable_target(path)
    target = real_target(path)
    mode = target.stat().st_mode & 0o7777 if target.exists() else None
    try:
        with _unnamed_file(target.parent) as (handle, name_it):
            write(handle)
            handle.flush()
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
                _keep_owner(handle.fileno(), target)
            os.fsync(handle.fileno())
            os.replace(name_it(target), target)
    except OSError as exc:  # a read-only folder, a full disk: nothing was replaced
        raise ModelError(f"{path}: cannot write it ({exc.strerror or exc})") from exc
    return target


@contextmanager
def _unnamed_file(folder: Path) -> Iterator:
    """(handle, name_it): a writable file in `folder`, and a function that gives it a temporary
    name there (to rename from). Any exception removes it."""
    named: list[Path] = []
    try:
        if not os.path.isdir("/proc/self/fd"):  # how an unnamed file is given a name
            raise OSError("no /proc")
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o666)
        unnamed = True
    except (AttributeError, OSError):  # not Linux, or a filesystem without O_TMPFILE
        fd, tmp = tempfile.mkstemp(prefix=".birdinfer-", suffix=".tmp", dir=folder)
        named.append(Path(tmp))
        os.fchmod(fd, 0o666 & ~_umask())
        unnamed = False

    def name_it(target: Path) -> Path:
        if not unnamed:
            return named[0]
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd/N: os.link uses it when given a dir fd.
        proc = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.link(str(fd), tmp, src_dir_fd=proc)
        finally:
            os.close(proc)
        named.append(tmp)
        return tmp

    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle, name_it
    except BaseException:
        for tmp in named:
            tmp.unlink(missing_ok=True)
        raise


def _copy(source, out) -> None:
    shutil.copyfileobj(source, out, 1 << 20)


def _keep_owner(fd: int, target: Path) -> None:
    stat = target.stat()
    # Only root may give a file away; anyone else's copy is then the writer's.
    with suppress(PermissionError):
        os.fchown(fd, stat.st_uid, stat.st_gid)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
