"""Files written atomically (nothing half-written is ever left at the destination), and directories
locked by one process at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{16}\.tmp$")
CACHE_ENV = "EQUILIBRIA_CACHE"


def cache_dir() -> Path:
    """Where equilibria caches what it derives (weights, reference features, classifiers, decoded
    datasets): ``$EQUILIBRIA_CACHE``, else ``~/.cache/equilibria``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "equilibria")


def root_os_error(error: BaseException) -> OSError | None:
    """The OSError with an errno behind ``error`` (itself, or in its chain of causes), if any.

    torch.save on a full disk raises RuntimeError("... unexpected pos ...") with the real cause,
    OSError(ENOSPC), only in its context."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno is not None:
            return error
        error = error.__cause__ or error.__context__
    return None


def write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write`` on a new temporary file next to ``path`` (creating parent directories), flush and
    fsync it, then rename it onto ``path``; on any error the temporary file is removed, and an I/O
    error is raised as one ``OSError`` naming its root cause (no space left, permission denied) and
    ``path``.

    The temporary file is opened normally (not with mkstemp's 0600 mode), so the result gets the
    permissions the umask gives any new file.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        cause = root_os_error(error)
        if cause is None:
            raise
        raise OSError(cause.errno, f"could not write {path}: {cause.strerror or os.strerror(cause.errno)}") from error
    return path


def save_atomically(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` through ``write_atomically``."""
    import torch

    return write_atomically(path, lambda handle: torch.save(obj, handle))


def remove_orphans(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that writes killed mid-way left in ``directory``; return them."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    orphans = [p for p in directory.iterdir() if p.is_file() and _TEMPORARY.match(p.name)]
    for orphan in orphans:
        orphan.unlink(missing_ok=True)
    return orphans


class DirectoryLocked(Exception):
    """Another live process holds the directory's lock; ``pid`` is what it wrote there ("" if unknown)."""

    def __init__(self, directory: Path, pid: str):
        super().__init__(f"{directory} is locked by process {pid or '(unknown)'}")
        self.directory, self.pid = directory, pid


LOCK_FILE = ".lock"


@contextlib.contextmanager
def locked(directory: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on ``directory`` (created if missing) while the block runs, or raise
    ``DirectoryLocked`` at once if another process holds it. The lock is ``flock`` on its file
    ``.lock``, which holds the owner's pid: the system releases it when the process ends, however it
    ends, so a killed process leaves no stale lock. A directory this call created is removed again if
    the block fails before anything but the lock file was written in it."""
    directory = Path(directory)
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    handle = open(directory / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip()
        handle.close()
        raise DirectoryLocked(directory, pid) from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    try:
        yield directory
    except BaseException:
        if created and [p.name for p in directory.iterdir()] == [LOCK_FILE]:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    finally:
        handle.close()  # releases the lock
