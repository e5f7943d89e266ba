"""`zoo run NAME --input-dir DIR -o OUT`: a folder of pictures through a backend in fixed-size batches."""

import json

import pytest
from PIL import Image

import zoo
from conftest import MNIST, assert_clean_error, needs_data, zoo_cli
from zoo.batch import OUTPUT_NAME, prepare
from zoo.data import read_mnist
from zoo.runtime import open_backend
from zoo.tasks import image_classification

pytestmark = needs_data

DIGITS = 23  # not a multiple of the batch size: the last batch is short


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One export cache for the module, so the cnn is exported to ONNX once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Held-out MNIST digits as PNG files (some in a sub-folder, one as JPEG) plus a file that is no picture."""
    folder = tmp_path_factory.mktemp("digits")
    (folder / "more").mkdir()
    images, labels = read_mnist(MNIST, "heldout")
    truth = {}
    for index in range(DIGITS):
        name = f"{'more/' if index % 3 == 0 else ''}{index:03d}.{'jpg' if index == 4 else 'png'}"
        Image.fromarray(images[index]).save(folder / name)
        truth[name] = int(labels[index])
    (folder / "notes.txt").write_text("not a picture: batch mode skips it\n")
    return folder, truth


def run_batch(folder, out, cache, *extra):
    return zoo_cli("run", "cnn", "--backend", "onnx", "--input-dir", folder, "-o", out, *extra,
                   env={"ZOO_CACHE_DIR": str(cache)})


def read_predictions(out):
    return [json.loads(line) for line in (out / OUTPUT_NAME).read_text().splitlines()]


def test_predictions_match_single_picture_runs_and_labels(digits, cache, tmp_path, monkeypatch):
    folder, truth = digits
    out = tmp_path / "results"
    result = run_batch(folder, out, cache, "--batch-size", "5")
    assert result.returncode == 0, result.stderr
    assert f"{DIGITS} images" in result.stderr and result.stdout == ""
    records = read_predictions(out)
    assert [r["file"] for r in records] == sorted(truth, key=lambda name: ("/" in name, name))
    assert sum(r["prediction"] == truth[r["file"]] for r in records) >= DIGITS - 1

    # Each line says what `zoo run cnn --image FILE` says about that file (the CLI for two, its function for all).
    monkeypatch.setenv("ZOO_CACHE_DIR", str(cache))
    spec = zoo.resolve("cnn").spec
    backend = open_backend(spec, "onnx")
    for record in records:
        single = image_classification.run(spec, backend, {"image": str(folder / record["file"])}).product.splitlines()[1:]
        assert [line.split() for line in single] == [[str(t["label"]), f"{t['probability']:.4f}"] for t in record["top"]]
    for record in records[:2]:
        cli = zoo_cli("run", "cnn", "--backend", "onnx", "--image", folder / record["file"], env={"ZOO_CACHE_DIR": str(cache)})
        assert cli.returncode == 0, cli.stderr
        assert cli.stdout.splitlines()[1].split() == [str(record["prediction"]), f"{record['top'][0]['probability']:.4f}"]


class RecordingBackend:
    """The real ONNX backend, noting the batch size of every call."""

    def __init__(self, backend):
        self.backend, self.name, self.graph, self.sizes = backend, backend.name, backend.graph, []

    def run(self, feeds):
        self.sizes.append(len(next(iter(feeds.values()))))
        return self.backend.run(feeds)


def test_inputs_stream_in_fixed_size_batches(digits, cache, tmp_path, monkeypatch):
    folder, _ = digits
    monkeypatch.setenv("ZOO_CACHE_DIR", str(cache))
    spec = zoo.resolve("cnn").spec
    job = prepare(spec, {"input_dir": folder, "output": tmp_path / "out", "batch_size": 8})
    backend = RecordingBackend(open_backend(spec, "onnx"))
    result = job.run(backend, progress=False)
    assert "23 images" in result.note and result.data["inputs"] == 23
    assert backend.sizes == [8, 8, 7]
    assert len(read_predictions(tmp_path / "out")) == DIGITS


def test_unreadable_picture_is_named_and_leaves_the_old_output_whole(digits, cache, tmp_path):
    folder, _ = digits
    out = tmp_path / "results"
    assert run_batch(folder, out, cache).returncode == 0
    before = (out / OUTPUT_NAME).read_bytes()
    broken = tmp_path / "broken"
    broken.mkdir()
    for index, picture in enumerate(sorted(folder.glob("*.png"))[:3]):
        (broken / f"{index}.png").write_bytes(picture.read_bytes())
    (broken / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert_clean_error(run_batch(broken, out, cache, "--batch-size", "2"), "1.png", "not an image")
    assert (out / OUTPUT_NAME).read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == [OUTPUT_NAME]  # no temporary file left behind


def test_folder_without_pictures_is_a_clean_error(tmp_path, cache):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no pictures here\n")
    assert_clean_error(run_batch(empty, tmp_path / "out", cache), "holds no images")
    assert_clean_error(run_batch(tmp_path / "missing", tmp_path / "out", cache), "is not a folder")
    assert not (tmp_path / "out").exists()


def test_model_that_takes_no_inputs_is_a_clean_error(digits, tmp_path):
    folder, _ = digits
    result = zoo_cli("run", "dcgan", "--input-dir", folder, "-o", tmp_path / "out")
    assert_clean_error(result, "dcgan (image-generation) takes no input files", "image-classification")
    assert not (tmp_path / "out").exists()


def test_flags_that_do_not_fit_batch_mode_are_clean_errors(digits, tmp_path, cache):
    folder, _ = digits
    assert_clean_error(zoo_cli("run", "cnn", "--input-dir", folder), "needs -o OUTDIR")
    assert_clean_error(run_batch(folder, tmp_path / "out", cache, "--image", folder / "001.png"), "not both")
    assert_clean_error(run_batch(folder, tmp_path / "out", cache, "--batch-size", "0"), "--batch-size", "at least 1")
