"""What a command prints where: the product on stdout, progress and metadata on stderr; files in the format
their name asks for."""

from PIL import Image

from conftest import assert_clean_error, zoo_cli


def test_image_grids_are_written_in_the_format_of_their_extension(tmp_path):
    result = zoo_cli("run", "dcgan", "--n", "4", "-o", tmp_path / "samples.jpg")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "samples.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes
    assert Image.open(tmp_path / "samples.jpg").format == "JPEG"
    refused = zoo_cli("run", "dcgan", "--n", "4", "-o", tmp_path / "samples.xyz")
    assert_clean_error(refused, "samples.xyz", ".png")
    assert not (tmp_path / "samples.xyz").exists()


def test_a_text_run_puts_the_text_alone_on_stdout(tmp_path):
    result = zoo_cli("run", "ngram", "--prompt", "ROMEO:", "--max-new-tokens", "30", "--seed", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ROMEO:") and "tokens from ngram" not in result.stdout  # `> story.txt` holds the text
    assert "[30 tokens from ngram" in result.stderr


def test_an_image_run_says_what_it_wrote_on_stderr(tmp_path):
    result = zoo_cli("run", "dcgan", "--n", "4", "-o", tmp_path / "grid.png")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and str(tmp_path / "grid.png") in result.stderr


def test_run_json_is_one_object_on_stdout_for_every_kind_of_result(tmp_path):
    import json

    text = zoo_cli("run", "ngram", "--prompt", "ROMEO:", "--max-new-tokens", "30", "--seed", "0", "--json")
    assert text.returncode == 0, text.stderr
    generated = json.loads(text.stdout)  # nothing streamed beside the JSON
    plain = zoo_cli("run", "ngram", "--prompt", "ROMEO:", "--max-new-tokens", "30", "--seed", "0")
    assert plain.stdout.rstrip("\n") == "ROMEO:" + generated["text"]
    assert (generated["model"], generated["prompt"], generated["new_tokens"]) == ("ngram", "ROMEO:", 30)

    grid = zoo_cli("run", "dcgan", "--n", "4", "-o", tmp_path / "grid.png", "--json")
    assert grid.returncode == 0, grid.stderr
    written = json.loads(grid.stdout)
    assert written["file"] == str(tmp_path / "grid.png") and written["samples"] == 4
    assert (tmp_path / "grid.png").is_file()

    episode = zoo_cli("run", "cartpole", "--seed", "3", "--json")
    assert episode.returncode == 0, episode.stderr
    played = json.loads(episode.stdout)
    assert played["seed"] == 3 and played["steps"] >= 1 and played["return"] == float(played["steps"])

    picture = tmp_path / "digit.png"
    Image.new("L", (28, 28), 0).save(picture)
    classes = zoo_cli("run", "cnn", "--image", picture, "--json")
    assert classes.returncode == 0, classes.stderr
    top = json.loads(classes.stdout)["top"]
    assert len(top) == 3 and top[0]["probability"] >= top[1]["probability"] >= top[2]["probability"]
