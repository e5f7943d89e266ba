"""Argument types for the command line that check ranges when the command is
parsed, so `--n 0` or `--lr -1` fails at once with argparse's one-line
usage error (exit 2), before any model loads or file is written.

    p.add_argument("--n", type=positive_int)
    p.add_argument("--lr", type=positive_float)
    p.add_argument("--batch", type=int_list(minimum=1))
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable

class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, like every other zoo error."""

    def error(self, message: str):
        self.exit(2, f"zoo: error: {message} (see `{self.prog} --help`)\n")


# A seed feeds numpy's and torch's generators; both take unsigned 32-bit seeds where it matters.
MAX_SEED = 2**32 - 1


def bounded_int(minimum: int | None = None, maximum: int | None = None, what: str = "") -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is too small; {what + ' ' if what else ''}must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{value} is too large; {what + ' ' if what else ''}must be at most {maximum}")
        return value

    parse.__name__ = "int"  # argparse names the type in "invalid int value" messages
    return parse


def bounded_float(minimum: float | None = None, maximum: float | None = None, above: bool = False,
                  what: str = "") -> Callable[[str], float]:
    """A finite float >= minimum (> minimum when `above`) and <= maximum."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if minimum is not None and (value <= minimum if above else value < minimum):
            bound = f"greater than {minimum:g}" if above else f"at least {minimum:g}"
            raise argparse.ArgumentTypeError(f"{value:g} is out of range; {what + ' ' if what else ''}must be {bound}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{value:g} is out of range; {what + ' ' if what else ''}must be at most {maximum:g}")
        return value

    parse.__name__ = "float"
    return parse


positive_int = bounded_int(minimum=1)
non_negative_int = bounded_int(minimum=0)
seed = bounded_int(minimum=0, maximum=MAX_SEED, what="a seed")
positive_float = bounded_float(minimum=0.0, above=True)
non_negative_float = bounded_float(minimum=0.0)


def int_list(minimum: int = 1) -> Callable[[str], list[int]]:
    """Comma-separated whole numbers, each at least `minimum`: "1,8,64"."""
    item = bounded_int(minimum=minimum, what="each value")

    def parse(text: str) -> list[int]:
        parts = [part.strip() for part in text.split(",")]
        if not all(parts):
            raise argparse.ArgumentTypeError(f"{text!r} must be comma-separated whole numbers, e.g. 1,64")
        return [item(part) for part in parts]

    parse.__name__ = "list"
    return parse


def output_file(*suffixes: str) -> Callable[[str], Path]:
    """A file to write (not an existing folder), optionally with one of `suffixes`."""

    def parse(text: str) -> Path:
        path = Path(text)
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder; name the file to write, e.g. {path / ('out' + (suffixes[0] if suffixes else ''))}")
        if suffixes and path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{text} must end in {' or '.join(suffixes)}")
        return path

    parse.__name__ = "file"
    return parse


def existing_folder(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder")
    return path


existing_folder.__name__ = "folder"
