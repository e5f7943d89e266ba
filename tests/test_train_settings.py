"""Recipes declare their hyperparameters; `zoo train --set` is checked against them and the model config."""

import json
import subprocess
import sys

import pytest

import zoo
from conftest import MNIST, assert_clean_error, needs_data, zoo_cli
from zoo.errors import ConfigError, PluginError
from zoo.training import TrainOptions, split_settings, trainer_of


def _split(model, **given):
    spec = zoo.get_spec(model)
    return split_settings(spec, trainer_of(spec), given)


def test_settings_split_into_model_config_and_complete_recipe_settings():
    overrides, settings = _split("cyclegan", base_channels=8, pool_size=10)
    assert overrides == {"base_channels": 8}
    assert settings == {"cycle_weight": 10.0, "identity_weight": 5.0, "pool_size": 10, "decay_from": 0.5}
    assert _split("cyclegan", cycle_weight=3)[1]["cycle_weight"] == 3  # an int is a float
    assert _split("cnn")[1] == {"dataset": "mnist", "init": ""}


@pytest.mark.parametrize("model, given, fragments", [
    ("dcgan", {"lattent_dim": 16}, ["unknown --set key(s) lattent_dim for dcgan", "latent_dim", "none (recipe)"]),
    ("dcgan", {"latent_dim": "16x"}, ['--set latent_dim="16x": expected an integer (model config)', "--set latent_dim=100"]),
    ("dcgan", {"latent_dim": 16.5}, ["expected an integer"]),
    ("cyclegan", {"pool_size": 1.5}, ["--set pool_size=1.5: expected an integer", "image pool"]),
    ("cnn", {"channels": [4, "8"]}, ["expected a list of integers"]),
    ("cnn", {"hidden": [1, 2]}, ["--set hidden=[1, 2]: expected an integer"]),
])
def test_a_bad_setting_is_one_line_naming_what_is_accepted(model, given, fragments):
    with pytest.raises(ConfigError) as error:
        _split(model, **given)
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@needs_data
def test_a_recipe_receives_its_declared_settings(tmp_path):
    from zoo.plugins.vaegan.train import VAEGANRecipe

    spec = zoo.get_spec("vaegan").with_config({"base_channels": 4})
    recipe = VAEGANRecipe(spec, TrainOptions(data=MNIST, hparams={"gamma": 0.5}, limit=1))
    assert recipe.settings == {"gamma": 0.5} and recipe.spec is spec and recipe.config["base_channels"] == 4
    with pytest.raises(ConfigError, match="unknown --set key"):
        VAEGANRecipe(spec, TrainOptions(data=tmp_path, hparams={"gama": 0.5}))


def test_cli_rejects_a_mistyped_key_before_training(tmp_path):
    result = zoo_cli("train", "dcgan", "--set", "latent_dimm=16", "--out", tmp_path / "w.safetensors")
    assert result.returncode == 2
    assert_clean_error(result, "unknown --set key(s) latent_dimm for dcgan", "latent_dim, base_channels")
    assert not list(tmp_path.iterdir())


def test_train_help_lists_a_models_settings_without_importing_torch():
    probe = ("import sys\nfrom zoo.cli import main\n"
             "try:\n    main(['train', 'cartpole', '--help'])\nexcept SystemExit as exit:\n    code = exit.code\n"
             "print('TORCH' if 'torch' in sys.modules else 'LIGHT', code)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "--set KEY=VALUE keys of cartpole" in result.stdout
    assert "gae_lambda" in result.stdout and "GAE lambda" in result.stdout and "observation_dim" in result.stdout
    assert result.stdout.strip().endswith("LIGHT 0")


def test_info_lists_the_recipe_hyperparameters():
    result = zoo_cli("info", "stylegan", "--json")
    assert result.returncode == 0, result.stderr
    declared = {h["key"]: h for h in json.loads(result.stdout)["hyperparameters"]}
    assert declared["r1_interval"]["default"] == 16 and "R1" in declared["r1_interval"]["help"]


def test_a_trainer_declaring_a_hyperparameter_without_default_is_refused():
    from zoo.specs import validate_trainer_spec

    spec = zoo.TrainerSpec("t", "m:R", hyperparameters=(zoo.Setting("steps", None),))
    with pytest.raises(PluginError, match="setting 'steps' needs a TOML default"):
        validate_trainer_spec(spec)
