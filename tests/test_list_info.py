import json

from conftest import assert_clean_error, zoo_cli


def test_list_shows_dcgan_with_its_columns():
    result = zoo_cli("list")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "TASK", "PLUGIN", "WEIGHTS", "PARAMS", "TARGETS"]
    dcgan = next(row.split() for row in rows if row.startswith("dcgan "))
    assert dcgan[1] == "image-generation" and dcgan[2] == "dcgan" and "onnx" in dcgan[5]


def test_list_json_filters_by_pattern_and_task():
    everything = json.loads(zoo_cli("list", "--json").stdout)
    assert {"name", "task", "plugin", "weights", "params", "targets"} <= set(everything[0])
    gans = json.loads(zoo_cli("list", "*gan*", "--task", "image-generation", "--json").stdout)
    assert [m["name"] for m in gans] == sorted(m["name"] for m in everything if "gan" in m["name"] and m["task"] == "image-generation")
    assert json.loads(zoo_cli("list", "--task", "policy", "--json", "nomatch*").stdout) == []


def test_info_prints_the_card():
    result = zoo_cli("info", "dcgan")
    assert result.returncode == 0, result.stderr
    for field in ("task", "builder", "graph model", "sha256", "command", "zoo train dcgan", "heldout_fd_pix8"):
        assert field in result.stdout


def test_unknown_model_suggests_close_names():
    assert_clean_error(zoo_cli("info", "dcgn"), "unknown model 'dcgn'", "dcgan")
    assert_clean_error(zoo_cli("export", "dcgam", "-o", "out"), "unknown model", "did you mean 'dcgan'")


def test_unknown_variant_lists_the_available_ones():
    assert_clean_error(zoo_cli("info", "dcgan:nope"), "dcgan:nope", "dcgan:default")
