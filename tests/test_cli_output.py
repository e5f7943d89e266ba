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
