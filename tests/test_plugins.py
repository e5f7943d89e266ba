"""Plugin isolation: one broken plugin never takes the zoo down."""

import json

import pytest

import zoo
from conftest import assert_clean_error, zoo_cli
from zoo.errors import PluginError
from zoo.registry import load_registry

GOOD_MODEL = '''
import zoo

@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(
        name="{name}", task="image-generation", builder="{module}:build",
        graphs=(zoo.GraphSpec(inputs=(zoo.TensorSpec("z", ("batch", 4)),),
                              outputs=(zoo.TensorSpec("image", ("batch", 4)),)),),
    ))

def build():
    import torch
    return torch.nn.Identity()
'''


def plugins_json(**env):
    result = zoo_cli("plugins", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return {p["name"]: p for p in json.loads(result.stdout)}, result


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_works(plugin_dir):
    plugin_dir("broken_import", "import not_a_real_module\n")
    plugins, result = plugins_json()
    assert "ModuleNotFoundError" in plugins["broken_import"]["errors"][0]
    assert plugins["dcgan"]["errors"] == []
    warnings = [line for line in result.stderr.splitlines() if "broken_import" in line]
    assert len(warnings) == 1 and warnings[0].startswith("zoo: warning:")
    listed = zoo_cli("list")
    assert listed.returncode == 0 and "dcgan" in listed.stdout


def test_a_plugin_that_raises_in_its_hook_is_reported(plugin_dir):
    plugin_dir("raising", "import zoo\n@zoo.hookimpl\ndef register_models(register):\n    raise RuntimeError('boom')\n")
    plugins, _ = plugins_json()
    assert plugins["raising"]["errors"] == ["raised in register_models: RuntimeError: boom"]
    assert "dcgan" in zoo_cli("list").stdout


def test_an_invalid_spec_is_reported(plugin_dir):
    source = GOOD_MODEL.format(name="Bad Name", module="invalid_spec")
    plugin_dir("invalid_spec", source)
    plugins, _ = plugins_json()
    assert "registered an invalid spec" in plugins["invalid_spec"]["errors"][0]
    assert "'Bad Name'" in plugins["invalid_spec"]["errors"][0]


def test_a_misspelled_hook_is_caught(plugin_dir):
    plugin_dir("typo", "import zoo\n@zoo.hookimpl\ndef register_modles(register):\n    pass\n")
    plugins, _ = plugins_json()
    assert "unknown hook" in plugins["typo"]["errors"][0]
    assert "register_modles" in plugins["typo"]["errors"][0]


def test_two_plugins_registering_one_name_is_an_error_naming_both(plugin_dir):
    plugin_dir("copycat", GOOD_MODEL.format(name="dcgan", module="copycat"))
    plugins, _ = plugins_json()
    assert "'dcgan'" in plugins["copycat"]["errors"][0] and "plugin 'dcgan'" in plugins["copycat"]["errors"][0]
    assert "copycat" in plugins["dcgan"]["errors"][0]
    assert_clean_error(zoo_cli("info", "dcgan"), "plugin 'dcgan'", "plugin 'copycat'", "ZOO_DISABLE_PLUGINS")
    # Disabling one of the two resolves the collision.
    result = zoo_cli("info", "dcgan", env={"ZOO_DISABLE_PLUGINS": "copycat"})
    assert result.returncode == 0, result.stderr


def test_disable_plugins_by_name(plugin_dir):
    plugin_dir("extra", GOOD_MODEL.format(name="extra-model", module="extra"))
    assert "extra-model" in zoo_cli("list").stdout
    plugins, _ = plugins_json(ZOO_DISABLE_PLUGINS="extra,other")
    assert plugins["extra"]["disabled"] is True
    assert "extra-model" not in zoo_cli("list", env={"ZOO_DISABLE_PLUGINS": "extra"}).stdout


def test_strict_mode_turns_load_errors_into_failures(plugin_dir):
    plugin_dir("broken_import", "import not_a_real_module\n")
    assert_clean_error(zoo_cli("list", env={"ZOO_STRICT_PLUGINS": "1"}), "broken_import", "ZOO_STRICT_PLUGINS")


def test_trace_switch_logs_hook_calls(plugin_dir):
    result = zoo_cli("list", env={"ZOO_TRACE_PLUGINS": "1"})
    assert result.returncode == 0
    assert "register_models" in result.stderr


def test_plugins_lists_distribution_version_and_hooks(plugin_dir):
    plugin_dir("extra", GOOD_MODEL.format(name="extra-model", module="extra"), version="2.3.4")
    plugins, _ = plugins_json()
    assert plugins["extra"]["distribution"] == "extra" and plugins["extra"]["version"] == "2.3.4"
    assert plugins["extra"]["hooks"] == ["register_models"]
    assert plugins["onnx"]["hooks"] == ["register_exporters"]
    assert plugins["dcgan"]["distribution"] == "aigc-zoo"


def test_load_registry_in_process_with_explicit_entry_points(plugin_dir):
    from importlib import metadata

    plugin_dir("solo", GOOD_MODEL.format(name="solo", module="solo"))
    warnings = []
    tasks = metadata.EntryPoint("tasks", "zoo.tasks", "zoo")
    registry = load_registry([metadata.EntryPoint("solo", "solo", "zoo"), tasks], warn=warnings.append)
    assert list(registry.models) == ["solo"] and registry.owner("models", "solo") == "solo"
    assert registry.models["solo"].package == "solo"
    assert registry.owner("tasks", "image-generation") == "tasks"
    assert warnings == []
    # Without the plugin that registers its task, the model is still listed, and the plugin is told why
    # `zoo run` / `zoo eval` cannot use it.
    registry = load_registry([metadata.EntryPoint("solo", "solo", "zoo")], warn=warnings.append)
    assert list(registry.models) == ["solo"]
    assert warnings == [
        "plugin 'solo' registers model 'solo' of task 'image-generation', which no plugin registers (known tasks: "
        "none); install the plugin that provides the task, or `zoo run` and `zoo eval` cannot use the model; "
        "see `zoo plugins`"
    ]
    with pytest.raises(PluginError):
        load_registry([metadata.EntryPoint("gone", "no_such_module_xyz", "zoo")], strict=True)


def test_task_spec_validation_names_the_problem():
    from dataclasses import replace

    from zoo.specs import validate_task_spec

    good = zoo.TaskSpec(name="denoising", run="m:run", evaluate="m:evaluate", options=(zoo.Option("noise", type="float"),))
    validate_task_spec(good)
    for change, fragment in (
        ({"name": "De Noising"}, "task name 'De Noising'"),
        ({"run": None}, "run None must be 'module:attribute'"),
        ({"quality": "no-colon"}, "quality 'no-colon'"),
        ({"options": (zoo.Option("noise", commands=("train",)),)}, "commands"),
    ):
        with pytest.raises(PluginError, match=fragment):
            validate_task_spec(replace(good, **change))


def test_model_spec_validation_names_the_problem():
    from zoo.specs import validate_model_spec

    good = zoo.ModelSpec(
        name="ok", task="policy", builder="m:f",
        graphs=(zoo.GraphSpec(inputs=(zoo.TensorSpec("x", (1,)),), outputs=(zoo.TensorSpec("y", (1,)),)),),
    )
    validate_model_spec(good)
    from dataclasses import replace

    for change, fragment in (
        ({"task": "Dancing Queen"}, "task 'Dancing Queen'"),
        ({"options": (zoo.Option("label", type="integer"),)}, "option 'label' has type 'integer'"),
        ({"options": (zoo.Option("label", input="y_label"),)}, "fills input 'y_label', which no graph has"),
        ({"options": (zoo.Option("n"), zoo.Option("n"))}, "option names repeat"),
        ({"builder": "no-colon"}, "builder"),
        ({"graphs": ()}, "at least one graph"),
        ({"graphs": (zoo.GraphSpec(inputs=(zoo.TensorSpec("x", (1,), dtype="complex"),), outputs=(zoo.TensorSpec("y", (1,)),)),)}, "dtype"),
    ):
        with pytest.raises(PluginError, match=fragment):
            validate_model_spec(replace(good, **change))


def test_a_builder_path_that_does_not_import_is_a_one_line_error_at_build_time(plugin_dir, tmp_path):
    from safetensors.numpy import save_file
    import numpy as np

    plugin_dir("lost", GOOD_MODEL.format(name="lost", module="lost_typo"))
    listed = zoo_cli("list")
    assert listed.returncode == 0 and "lost" in listed.stdout  # the spec is data: listing never imports the builder
    with pytest.raises(PluginError, match=r"the builder of model 'lost' \(plugin 'lost'\) 'lost_typo:build' cannot be imported"):
        zoo.build("lost")
    weights = tmp_path / "lost.safetensors"
    save_file({"unused": np.zeros(1, np.float32)}, str(weights), metadata={"zoo.model": "lost"})
    assert_clean_error(zoo_cli("export", "lost", "--weights", weights, "-o", tmp_path / "out"),
                       "builder of model 'lost'", "'lost_typo:build'", "ModuleNotFoundError")
