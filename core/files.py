"""Atomic writes: a result appears whole or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from zoo.errors import ZooError


def ensure_writable_dir(directory: Path, flag: str = "-o") -> Path:
    """Create `directory` (and parents) or fail with a one-line error."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=directory, prefix=".zoo-probe-")
        probe.close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ZooError(f"cannot write to {directory}: {reason}; choose a writable directory with {flag}") from None
    return directory


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_file(path: Path, flag: str = "-o") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` on success."""
    path = Path(path)
    ensure_writable_dir(path.parent or Path("."), flag)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; a result should get the usual mode
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@contextlib.contextmanager
def atomic_directory(path: Path, flag: str = "-o") -> Iterator[Path]:
    """Yield an empty temporary directory beside `path`; it replaces `path` on success."""
    path = Path(path)
    ensure_writable_dir(path.parent, flag)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    os.chmod(temporary, 0o777 & ~_umask())
    try:
        yield temporary
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, old / path.name)
            os.replace(temporary, path)
            shutil.rmtree(old)
        else:
            os.replace(temporary, path)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary)
