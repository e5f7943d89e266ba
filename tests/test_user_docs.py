"""The repository is written for users who have never seen the machines it was made on."""

import re
import subprocess
from pathlib import Path

import pytest

from conftest import DATA, ROOT


def _tracked_text_files():
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    for name in filter(None, listed.stdout.split("\0")):
        path = ROOT / name
        if path.is_file() and not path.is_symlink():
            try:
                yield name, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:  # weights, images
                continue


def _machine_paths():
    """Absolute folders of this machine that a tracked file must not name: where the checkout sits, the
    data folder, the home directory. A folder directly under / (or / itself) is too short to be telling."""
    paths = {ROOT.parent, DATA.resolve(), DATA.resolve().parent, Path.home()}
    return sorted({str(p) + "/" for p in paths if len(p.parts) > 2 or (len(p.parts) == 2 and p.parts[1] not in ("tmp", "usr"))})


def test_no_tracked_file_names_a_path_of_this_machine():
    paths = _machine_paths()
    assert paths, "no machine path to look for"
    found = [f"{name}: {p}" for name, text in _tracked_text_files() for p in paths if p in text]
    assert not found, "absolute paths of this machine (use ../shared/data or --data DIR):\n" + "\n".join(found)


def test_docs_do_not_describe_how_the_work_was_organised():
    words = re.compile(r"\bagents?\b|\blent\b|DESIGN\.md|merged at|this session", re.IGNORECASE)
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "examples").rglob("*.md"))]
    found = [f"{path.relative_to(ROOT)}: {match.group(0)!r}" for path in docs
             for match in words.finditer(path.read_text(encoding="utf-8"))]
    assert not found, "\n".join(found)


def test_shipped_cards_print_rounded_metrics():
    from zoo.weights import rounded_metrics

    assert rounded_metrics({"a": 0.4830000102519989, "b": 201.31391, "c": 10, "d": 0.000123456}) == {
        "a": 0.483, "b": 201.3139, "c": 10, "d": 0.000123}
    for card in sorted(ROOT.glob("plugins/*/weights/*.card.toml")):
        for line in card.read_text().splitlines():
            assert not re.search(r"= -?\d+\.\d{7,}$", line), f"{card.relative_to(ROOT)}: {line}"
