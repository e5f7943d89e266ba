"""The command line explains itself: help for every flag, the targets and precisions in `zoo export --help`,
and a close match for a mistyped flag."""

import argparse

import pytest

from conftest import assert_clean_error, zoo_cli
from zoo.cli import build_parser


def _commands(parser, prefix="zoo"):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix} {name}")


def test_every_argument_of_every_command_has_help():
    missing = [f"{name}: {action.dest}" for name, parser in _commands(build_parser()) for action in parser._actions
               if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) and not action.help]
    assert not missing, missing


def test_export_help_lists_the_targets_and_precisions():
    result = zoo_cli("export", "--help")
    assert result.returncode == 0, result.stderr
    for word in ("onnx", "ort", "triton", "trt", "fp32", "fp16", "int8", "opencv"):
        assert f"  {word} " in result.stdout or f" {word}," in result.stdout, word


@pytest.mark.parametrize("argv, close", [(["run", "dcgan", "--num", "8"], "--n"),
                                         (["train", "dcgan", "--sed", "1", "--out", "x.safetensors"], "--seed"),
                                         (["data", "fetch", "mnist", "--dta", "x"], "--data")])
def test_a_mistyped_flag_gets_the_close_flag_and_its_commands_help(argv, close):
    result = zoo_cli(*argv)
    assert_clean_error(result, f"did you mean {close}?", f"zoo {argv[0]}")


def test_new_plugin_prints_next_steps_that_install_pytest(tmp_path):
    result = zoo_cli("new-plugin", "mymodel", "--dir", tmp_path / "mymodel")
    assert result.returncode == 0, result.stderr
    install = next(line for line in result.stdout.splitlines() if "pip install" in line)
    assert "[test]" in install  # the scaffold's test extra brings pytest
    assert 'test = ["pytest' in (tmp_path / "mymodel" / "pyproject.toml").read_text()
