"""Files written atomically: nothing half-written is ever left at the destination."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write`` on a new temporary file next to ``path`` (creating parent directories), flush and
    fsync it, then rename it onto ``path``; on any error the temporary file is removed.

    The temporary file is opened normally (not with mkstemp's 0600 mode), so the result gets the
    permissions the umask gives any new file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        with open(temporary, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def save_atomically(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` through ``write_atomically``."""
    import torch

    return write_atomically(path, lambda handle: torch.save(obj, handle))
