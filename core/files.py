"""Safe file writing: a result appears whole or not at all, where the user
asked for it, and the zoo never deletes or moves what it did not create.

Every result is written to a temporary sibling named
``.<name>.zoo-<pid>-<random>.tmp`` and renamed onto its final name only
when it is complete. A previous result that a new one replaces is first
renamed to ``.<name>.zoo-<pid>-<random>.old`` and removed after the swap.
A process killed in between (SIGKILL, a power cut) leaves such siblings; the
next write of the same name removes the ones whose process is gone, and puts
an ``.old`` back when nothing replaced it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from zoo.errors import ZooError

_TAG = "zoo-"


def ensure_writable_dir(directory: Path, flag: str = "-o") -> Path:
    """Create `directory` (and parents) or fail with a one-line error naming `flag`."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ZooError(f"{flag} {directory} is a file, not a folder; choose a folder with {flag}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=directory, prefix=f".{_TAG}probe-")
        probe.close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ZooError(f"cannot write to {directory}: {reason}; choose a writable directory with {flag}") from None
    return directory


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _sibling_prefix(path: Path) -> str:
    return f".{path.name}.{_TAG}{os.getpid()}-"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(path: Path) -> None:
    """Remove the temporary siblings of `path` that a dead zoo process left; restore an
    ``.old`` whose replacement never arrived."""
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{_TAG}(\d+)-[A-Za-z0-9_]+\.(tmp|old)")
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if not match or _alive(int(match[1])):
            continue
        stale = Path(entry.path)
        if match[2] == "old" and not os.path.lexists(path):
            os.replace(stale, path)
        elif stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_file(path: Path, flag: str = "-o") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` on success."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise ZooError(f"{flag} {path} is a folder; name the file to write, e.g. {path / 'out'}{path.suffix or ''}")
    ensure_writable_dir(path.parent, flag)
    clean_stale(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=_sibling_prefix(path), suffix=".tmp")
    os.close(handle)
    try:
        yield Path(temporary)
        # Some writers (safetensors) recreate the file as 0600: give the result the usual mode.
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def _contains_cwd(path: Path) -> bool:
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        return False
    target = path.resolve()
    return cwd == target or target in cwd.parents


@contextlib.contextmanager
def atomic_directory(
    path: Path, flag: str = "-o", replaceable: Callable[[Path], bool] | None = None, force: bool = False,
    what: str = "result", can_force: bool = True,
) -> Iterator[Path]:
    """Yield an empty temporary directory beside `path`; it becomes `path` on success.

    An existing `path` is replaced only when it is empty or `replaceable(path)`
    says it is a previous result of the same kind. A folder holding anything
    else is refused, unless `force`: then the new entries are moved into it
    (entries of the same name replaced, the others kept). The current working
    directory, or a folder holding it, is never moved.
    """
    path = Path(path)
    ensure_writable_dir(path.parent, flag)
    mode = "new"
    if os.path.lexists(path):
        if path.is_symlink() or not path.is_dir():
            raise ZooError(f"{path} exists and is not a folder; remove it or choose another {flag}")
        if not any(path.iterdir()):
            mode = "empty"
        elif replaceable is not None and replaceable(path):
            mode = "replace"
        elif force:
            mode = "merge"
        else:
            also = f", or pass --force to add the {what}'s files to that folder" if can_force else ""
            raise ZooError(
                f"{path} already exists and is not empty (it holds files the zoo did not write, and the zoo replaces "
                f"only a previous {what}); choose another {flag}{also}"
            )
        if mode in ("empty", "replace") and _contains_cwd(path):
            raise ZooError(f"{path} is the current folder or holds it, so it cannot be replaced; run the command from another folder")
    clean_stale(path)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=_sibling_prefix(path), suffix=".tmp"))
    os.chmod(temporary, 0o777 & ~_umask())
    try:
        yield temporary
        if mode == "merge":
            _merge_into(temporary, path)
        elif mode == "replace":
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=_sibling_prefix(path), suffix=".old"))
            os.replace(path, old)  # renaming a folder onto an empty one is allowed
            os.replace(temporary, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, path)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


def _merge_into(source: Path, target: Path) -> None:
    """Move `source`'s entries into `target`, replacing entries of the same name (--force)."""
    for entry in sorted(source.iterdir()):
        destination = target / entry.name
        if destination.is_dir() and not destination.is_symlink():
            old = Path(tempfile.mkdtemp(dir=target, prefix=_sibling_prefix(destination), suffix=".old"))
            os.replace(destination, old)
            os.replace(entry, destination)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(entry, destination)


@contextlib.contextmanager
def file_lock(path: Path, waiting: str = "") -> Iterator[None]:
    """An exclusive lock held while the block runs (fcntl.flock: released when the process dies).
    `waiting` is printed to stderr when another process holds it."""
    import fcntl
    import sys

    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(f"zoo: {waiting}", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_regular_file(path: Path, flag: str, fix: str) -> None:
    """Refuse what reading would hang on or misread: a missing path, a FIFO, a device, a folder."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ZooError(f"{flag} {path} does not exist; {fix}") from None
    except OSError as exc:
        raise ZooError(f"{flag} {path} cannot be read ({exc.strerror}); {fix}") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise ZooError(f"{flag} {path} is {kind}, not a file; {fix}")
