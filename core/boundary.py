"""The command line's error boundary: every way a command can end, mapped to
one line on stderr and an exit status.

    0    success (also a closed pipe: `zoo list | head`)
    1    a bug: an exception the zoo did not expect; a short report says where to file it
    2    a problem the user can fix: bad input, bad config, a broken plugin, the disk or
         the permissions (an OSError, named as what it is)
    130  interrupted by SIGINT (Ctrl-C)
    143  terminated by SIGTERM (`timeout`, CI, `docker stop`)

SIGTERM is turned into `Terminated`, a KeyboardInterrupt, so every `finally`
that removes a temporary file runs on both signals. Libraries that catch
exceptions broadly (torch's exporter wraps a Ctrl-C in its own error) are
seen through: `check_interrupted` re-raises the signal or the OSError that
caused a wrapped failure.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import sys
import traceback
from typing import Callable

from zoo.errors import ZooError

EXIT_OK, EXIT_BUG, EXIT_USER = 0, 1, 2
EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_received: KeyboardInterrupt | None = None


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program was, like Ctrl-C."""


def one_line(text: str) -> str:
    """`text` without colour codes, on one line."""
    return " ".join(_ANSI.sub("", str(text)).split())


def _on_signal(number: int, frame) -> None:
    global _received
    _received = Terminated() if number == signal.SIGTERM else KeyboardInterrupt()
    raise _received


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM raise where the program is, and are remembered for `check_interrupted`."""
    global _received
    _received = None
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(number, _on_signal)
        except ValueError:  # not the main thread (an embedding program): keep its handlers
            pass


def check_interrupted(exc: BaseException) -> None:
    """Re-raise what really ended a library call that wrapped it: a signal, or an OSError
    (a full disk is the disk's fault, not the exporter's)."""
    if _received is not None:
        raise _received
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, KeyboardInterrupt):
            raise exc
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
            raise exc
        exc = exc.__cause__ or exc.__context__


def describe_os_error(exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    where = f" ({exc.filename})" if exc.filename else ""
    fixes = {
        errno.ENOSPC: "free some disk space or write somewhere else",
        errno.EDQUOT: "free some of your disk quota or write somewhere else",
        errno.EACCES: "choose a location you may write to, or fix its permissions",
        errno.EPERM: "choose a location you may write to, or fix its permissions",
        errno.EROFS: "the file system is read-only: write somewhere else",
        errno.ENOENT: "check the path",
    }
    fix = fixes.get(exc.errno, "check the path and the disk")
    return f"{reason}{where}; {fix}"


def _culprit(exc: BaseException) -> str:
    """Who to tell: the plugin package whose code raised last, else aigc-zoo."""
    from importlib import metadata

    plugins = {ep.value.partition(":")[0].partition(".")[0] for ep in metadata.entry_points(group="zoo")} - {"zoo"}
    files = {getattr(m, "__file__", None): name.partition(".")[0] for name, m in list(sys.modules.items())}
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        package = files.get(frame.filename)
        if package in plugins:
            return f"the issue tracker of the plugin package '{package}'"
        if package == "zoo":
            break
    return "the aigc-zoo issue tracker"


def report_bug(exc: BaseException) -> None:
    """The short report of an unexpected error: what, where to file it, how to see the traceback."""
    print(f"zoo: internal error: {type(exc).__name__}: {one_line(exc)[:300]}", file=sys.stderr)
    if os.environ.get("ZOO_DEBUG"):
        traceback.print_exception(exc)
    else:
        frame = traceback.extract_tb(exc.__traceback__)[-1:] or None
        where = f" at {os.path.basename(frame[0].filename)}:{frame[0].lineno}" if frame else ""
        print(
            f"zoo: this is a bug{where}; please report it on {_culprit(exc)} with the command you ran, "
            f"`zoo --version` and the traceback that ZOO_DEBUG=1 prints",
            file=sys.stderr,
        )


def run_command(handler: Callable[[], int | None]) -> int:
    """Run a command's handler inside the boundary; return the exit status."""
    install_signal_handlers()
    try:
        return handler() or EXIT_OK
    except ZooError as exc:
        print(f"zoo: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("zoo: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_SIGTERM
    except KeyboardInterrupt:
        print("zoo: interrupted (SIGINT)", file=sys.stderr)
        return EXIT_SIGINT
    except BrokenPipeError:
        # The reader went away (`zoo list | head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except MemoryError:
        print("zoo: error: out of memory; ask for less (a smaller --n or --batch-size)", file=sys.stderr)
        return EXIT_USER
    except OSError as exc:
        print(f"zoo: error: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_USER
    except SystemExit:
        raise
    except Exception as exc:  # a bug: never swallowed, never a bare traceback
        report_bug(exc)
        return EXIT_BUG
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)
            except ValueError:
                pass
