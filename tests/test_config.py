import pytest

from conftest import assert_clean_error, zoo_cli
from zoo.api import configuration
from zoo.config import ConfigError, load_config


def test_packaged_defaults():
    config = load_config()
    assert config["export"]["opset"] == 18 and config["export"]["validate_batch_sizes"] == [1, 8]


def test_layers_override_in_order(tmp_path, monkeypatch):
    user = tmp_path / "user.toml"
    user.write_text("[export]\nopset = 16\natol = 0.5\nrtol = 0.25\n")
    monkeypatch.setenv("ZOO_CONFIG", str(user))
    (tmp_path / "zoo.toml").write_text("[export]\natol = 0.01\nrtol = 0.02\n")
    monkeypatch.setenv("ZOO_EXPORT_RTOL", "0.03")
    config = load_config({"export": {"exporter": "torchscript"}}, cwd=tmp_path)
    assert config["export"]["opset"] == 16  # user file
    assert config["export"]["atol"] == 0.01  # ./zoo.toml over the user file
    assert config["export"]["rtol"] == 0.03  # environment over files
    assert config["export"]["exporter"] == "torchscript"  # flags over everything
    assert load_config({"export": {"rtol": 0.5}}, cwd=tmp_path)["export"]["rtol"] == 0.5


def test_environment_lists_and_booleans(monkeypatch):
    monkeypatch.setenv("ZOO_EXPORT_VALIDATE_BATCH_SIZES", "[2, 3]")
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "a, b")
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    config = load_config()
    assert config["export"]["validate_batch_sizes"] == [2, 3]
    assert config["plugins"] == {"disabled": ["a", "b"], "strict": True}


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("[export]\nopset = 'eighteen'\n", ["export.opset must be an integer", "'eighteen'"]),
        ("[export]\nopsett = 17\n", ["unknown key export.opsett"]),
        ("[exprot]\nopset = 17\n", ["unknown section [exprot]"]),
        ("[export\nopset = 17\n", ["fix the TOML syntax"]),
        ("[export]\nvalidate_batch_sizes = [1, 'x']\n", ["validate_batch_sizes must be a list of integers"]),
    ],
)
def test_invalid_file_names_file_key_and_type(tmp_path, text, fragments):
    (tmp_path / "zoo.toml").write_text(text)
    with pytest.raises(ConfigError) as error:
        configuration(cwd=tmp_path)
    assert str(tmp_path / "zoo.toml") in str(error.value)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_invalid_config_is_a_one_line_cli_error(tmp_path):
    (tmp_path / "zoo.toml").write_text("[export]\nopset = 'x'\n")
    assert_clean_error(zoo_cli("export", "dcgan", "-o", tmp_path / "out", cwd=tmp_path), "zoo.toml", "export.opset")
    assert not (tmp_path / "out" / "dcgan").exists()


def test_invalid_environment_value(monkeypatch):
    monkeypatch.setenv("ZOO_EXPORT_OPSET", "abc")
    with pytest.raises(ConfigError, match="ZOO_EXPORT_OPSET"):
        load_config()
