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
