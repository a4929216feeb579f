"""Atomic writes: a crash leaves the old file or the new one, never half of one.

Every file birdinfer puts in place goes through `write_atomic`: run outputs (the submission, the
per-window table, the run report, journal entries), reports, generated audio and model files.
The data goes into an unnamed file in the destination's folder (Linux's O_TMPFILE) that gets a
name only for the instant before the rename, so even a SIGKILL mid-write leaves nothing behind
(elsewhere, a named temporary removed on any exception). An existing file keeps its mode (and
owner, where allowed); a new one gets what an ordinary `open(path, "w")` gives it (the umask),
not the 0600 of a temporary file. `follow_symlinks` replaces a symlink's target and keeps the
link (a model file shared through a link); without it the link itself is replaced, as a plain
write-and-rename does.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any


def write_atomic(
    path: str | Path,
    write: Callable[[IO], Any],
    binary: bool = False,
    durable: bool = True,
    follow_symlinks: bool = False,
) -> Path:
    """Call `write(handle)` on a temporary file beside `path`, then rename it into place.
    Returns the path written (with `follow_symlinks`, a symlink's target).

    `durable` syncs the data to disk before the rename, so that even a power cut leaves one or
    the other; without it a process crash still does, and a power cut may leave the new name
    with less than its data (for files whose readers treat that as absent: journal entries).
    Text is written as UTF-8 with newlines untranslated."""
    target = real_target(path) if follow_symlinks else Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    existing = _regular_status(target)
    with _unnamed_file(target) as (fd, name_it):
        os.fchmod(fd, stat.S_IMODE(existing.st_mode) if existing else 0o666 & ~current_umask())
        if existing is not None:
            _keep_owner(fd, existing)
        mode = {"mode": "wb"} if binary else {"mode": "w", "encoding": "utf-8", "newline": ""}
        with os.fdopen(os.dup(fd), **mode) as handle:
            write(handle)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(name_it(), target)
    return target


def write_json_atomic(data: Any, path: str | Path) -> Path:
    return write_atomic(Path(path), lambda handle: json.dump(data, handle, indent=2, default=str))


def write_text_atomic(text: str, path: str | Path) -> Path:
    return write_atomic(Path(path), lambda handle: handle.write(text))


def real_target(path: str | Path) -> Path:
    """The file a write to `path` should change: a symlink's target (followed all the way)."""
    return Path(os.path.realpath(path))


def current_umask() -> int:
    """This process's umask, read without changing it where Linux shows it (os.umask can
    only be read by setting it, which races with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _regular_status(path: Path) -> os.stat_result | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status if stat.S_ISREG(status.st_mode) else None


@contextmanager
def _unnamed_file(target: Path) -> Iterator[tuple[int, Callable[[], Path]]]:
    """(fd, name_it): a writable file in `target`'s folder, and a function that gives it a
    temporary name there, `.<name>.XXXXXXXX.tmp` (to rename from). Any exception removes it."""
    folder = target.parent
    named: list[Path] = []
    try:
        if not os.path.isdir("/proc/self/fd"):  # how an unnamed file is given a name
            raise OSError("no /proc")
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o600)
        unnamed = True
    except (AttributeError, OSError):  # not Linux, or a filesystem without O_TMPFILE
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        named.append(Path(tmp))
        unnamed = False

    def name_it() -> Path:
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
        yield fd, name_it
    except BaseException:
        for tmp in named:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def _keep_owner(fd: int, existing: os.stat_result) -> None:
    # Only root may give a file away; anyone else's copy is then the writer's.
    with suppress(PermissionError):
        os.fchown(fd, existing.st_uid, existing.st_gid)
