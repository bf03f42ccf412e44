"""Files written atomically: nothing half-written is ever left at the destination."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
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
