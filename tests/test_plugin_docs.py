"""docs/plugins.md documents every hook, every spec field and every plugin environment variable."""

import dataclasses
import inspect
import re

import pytest

from conftest import ROOT
from zoo import hookspecs, specs

DOCS = (ROOT / "docs" / "plugins.md").read_text()
HOOKS = [name for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
         if hasattr(function, "zoo_spec")]
SPEC_CLASSES = [cls for _, cls in inspect.getmembers(specs, inspect.isclass)
                if dataclasses.is_dataclass(cls) and cls.__module__ == specs.__name__]


def section(title: str) -> str:
    """The text under heading `title`, up to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(title)}$", DOCS, re.M)
    assert match, f"docs/plugins.md has no section '{title}'"
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.M).search(DOCS, match.end())
    return DOCS[match.end():end.start() if end else len(DOCS)]


def test_the_hooks_are_found():
    assert HOOKS == ["register_exporters", "register_models", "register_tasks", "register_trainers"]
    assert {cls.__name__ for cls in SPEC_CLASSES} >= {"ModelSpec", "GraphSpec", "TensorSpec", "WeightsSpec",
                                                       "TrainerSpec", "ExporterSpec", "TaskSpec"}


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_exact_signature_and_an_example(hook):
    signature = f"def {hook}{inspect.signature(getattr(hookspecs, hook))}"
    text = section(f"`{signature}`")
    assert "register(" in text, f"the section on {hook} does not describe its argument"
    assert f"@zoo.hookimpl\ndef {hook}(register):" in text, f"the section on {hook} has no example"


@pytest.mark.parametrize("cls", SPEC_CLASSES, ids=lambda cls: cls.__name__)
def test_every_spec_field_is_documented_in_its_table(cls):
    text = section(cls.__name__)
    documented = set(re.findall(r"^\| `(\w+)` \|", text, re.M))
    fields = {field.name for field in dataclasses.fields(cls)}
    assert fields - documented == set(), f"{cls.__name__} fields missing from docs/plugins.md"
    assert documented - fields == set(), f"docs/plugins.md lists {cls.__name__} fields that do not exist"


def test_entry_point_group_and_environment_variables_are_documented():
    from zoo.registry import ENTRY_POINT_GROUP

    assert f"[project.entry-points.{ENTRY_POINT_GROUP}]" in DOCS
    variables = section("Environment variables")
    for name in ("ZOO_DISABLE_PLUGINS", "ZOO_STRICT_PLUGINS", "ZOO_TRACE_PLUGINS"):
        assert f"`{name}" in variables, name
