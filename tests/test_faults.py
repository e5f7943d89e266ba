"""The fault suite: bad input and hostile conditions, each ending as promised.

Every case runs the `zoo` command (in this process where that is safe, in a
child process for signals and hangs) inside a sandbox folder and asserts the
exit status, that stderr carries exactly one `zoo: error:` line and no
traceback, that nothing outside the command's output changed, and that no
temporary file (`.NAME.zoo-PID-*.tmp/.old`) was left behind. docs/reliability.md
lists the promises; none of these cases needs ../shared/data.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import zoo
from zoo.cli import main


# ---------------------------------------------------------------- the sandbox


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under `root` with its size, mode and modification time."""
    entries = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative.split("/")[0] in ("cache", "site", "__pycache__") or "__pycache__" in relative:
            continue
        info = path.lstat()
        # A folder's own mtime moves when a temporary entry comes and goes; its content is what counts.
        entries[relative] = (info.st_mode,) if path.is_dir() and not path.is_symlink() else (info.st_size, info.st_mode, info.st_mtime_ns)
    return entries


def leftovers(root: Path) -> list[str]:
    """Temporary files and folders of an interrupted write."""
    return [p.relative_to(root).as_posix() for p in root.rglob(".*") if ".zoo-" in p.name]


class Sandbox:
    """Runs `zoo` in a fresh working folder and checks what a failure may and may not leave."""

    def __init__(self, root: Path):
        self.root = root

    def zoo(self, *args, code: int = 2, says: tuple[str, ...] = (), writes: tuple[str, ...] = (), child: bool = False,
            env: dict[str, str] | None = None, timeout: float = 120):
        before = snapshot(self.root)
        if child:
            result = subprocess.run([sys.executable, "-m", "zoo", *map(str, args)], capture_output=True, text=True,
                                    env={**os.environ, **(env or {})}, timeout=timeout)
        else:
            result = run_in_process(args, env)
        assert result.returncode == code, (result.returncode, result.stderr[-2000:])
        if code == 2:
            assert_one_line(result.stderr, *says)
        changed = {path for path, info in snapshot(self.root).items() if before.get(path) != info}
        changed |= set(before) - set(snapshot(self.root))
        outside = sorted(p for p in changed if not any(p == w or p.startswith(w.rstrip("/") + "/") for w in writes))
        assert not outside, f"touched outside the output: {outside}"
        assert not leftovers(self.root), leftovers(self.root)
        return result


def run_in_process(args, env=None) -> subprocess.CompletedProcess:
    out, err = io.StringIO(), io.StringIO()
    saved = {key: os.environ.get(key) for key in (env or {})}
    os.environ.update(env or {})
    zoo.api._REGISTRY = None
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        zoo.api._REGISTRY = None
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def assert_one_line(stderr: str, *fragments: str) -> None:
    # What a terminal finally shows: a progress bar that erased itself with "\r" is not a line.
    shown = [line.split("\r")[-1] for line in stderr.split("\n")]
    lines = [line for line in shown if line.strip() and not line.startswith("zoo: warning:")]
    assert len(lines) == 1 and lines[0].startswith("zoo: error: "), stderr
    assert "Traceback" not in stderr and "\x1b[" not in stderr, stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def box(tmp_path):
    return Sandbox(tmp_path)


def shipped(model: str = "dcgan") -> Path:
    return zoo.weights.resolve(zoo.get_spec(model)).path


def safetensors_bytes(header, data: bytes = b"", raw_header: bytes | None = None) -> bytes:
    encoded = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(encoded)) + encoded + data


F32_HEADER = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "__metadata__": {"zoo.model": "dcgan", "zoo.config": "{}"}}


# ---------------------------------------------------------------- weights


def test_weights_missing(box):
    box.zoo("run", "dcgan", "--weights", "nowhere.safetensors", "-o", "x.png", says=("does not exist",))


def test_weights_truncated(box, tmp_path):
    (tmp_path / "w.safetensors").write_bytes(shipped().read_bytes()[:1000])
    box.zoo("run", "dcgan", "--weights", "w.safetensors", "-o", "x.png", says=("truncated",))


def test_weights_empty_file(box, tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"")
    box.zoo("run", "dcgan", "--weights", "w.safetensors", "-o", "x.png", says=("truncated or not safetensors",))


def test_weights_header_length_beyond_the_file(box, tmp_path):
    (tmp_path / "w.safetensors").write_bytes(struct.pack("<Q", 10**12) + b"{}")
    box.zoo("run", "dcgan", "--weights", "w.safetensors", "-o", "x.png", says=("bad header length",))


def test_weights_header_not_json(box, tmp_path):
    (tmp_path / "w.safetensors").write_bytes(safetensors_bytes(None, raw_header=b"{not json"))
    box.zoo("run", "dcgan", "--weights", "w.safetensors", "-o", "x.png", says=("unreadable header",))


@pytest.mark.parametrize("header", [[1, 2, 3], 42, "text", None])
def test_weights_header_json_but_not_a_table(box, tmp_path, header):
    (tmp_path / "w.safetensors").write_bytes(safetensors_bytes(header))
    box.zoo("run", "dcgan", "--weights", "w.safetensors", "-o", "x.png", says=("not a table of tensors",))


def test_weights_byte_range_beyond_the_data(box, tmp_path):
    header = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
    (tmp_path / "w.safetensors").write_bytes(safetensors_bytes(header, b"\0" * 4))
    box.zoo("run", "dcgan", "--weights", "w.safetensors", "-o", "x.png", says=("header promises 8",))


def test_weights_byte_ranges_overlap(box, tmp_path):
    header = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
              "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
    (tmp_path / "w.safetensors").write_bytes(safetensors_bytes(header, b"\0" * 12))
    box.zoo("run", "dcgan", "--weights", "w.safetensors", "-o", "x.png", says=("overlap or leave gaps",))


def test_weights_shape_and_range_disagree(box, tmp_path):
    header = {"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}
    (tmp_path / "w.safetensors").write_bytes(safetensors_bytes(header, b"\0" * 8))
    box.zoo("run", "dcgan", "--weights", "w.safetensors", "-o", "x.png", says=("needs 12 bytes",))


def test_weights_malformed_tensor_entry(box, tmp_path):
    header = {"w": {"dtype": "F32", "shape": "two", "data_offsets": [0, 8]}}
    (tmp_path / "w.safetensors").write_bytes(safetensors_bytes(header, b"\0" * 8))
    box.zoo("run", "dcgan", "--weights", "w.safetensors", "-o", "x.png", says=("malformed entry",))


def test_weights_metadata_not_strings(box, tmp_path):
    header = {**F32_HEADER, "__metadata__": {"zoo.model": 5}}
    (tmp_path / "w.safetensors").write_bytes(safetensors_bytes(header, b"\0" * 8))
    box.zoo("run", "dcgan", "--weights", "w.safetensors", "-o", "x.png", says=("metadata is not a table of strings",))


@pytest.mark.parametrize("config", ["{not json", "[1, 2]"])
def test_weights_zoo_config_not_a_json_object(box, tmp_path, config):
    header = {**F32_HEADER, "__metadata__": {"zoo.model": "dcgan", "zoo.config": config}}
    (tmp_path / "w.safetensors").write_bytes(safetensors_bytes(header, b"\0" * 8))
    box.zoo("run", "dcgan", "--weights", "w.safetensors", "-o", "x.png", says=("zoo.config that is not a JSON object",))


@pytest.mark.parametrize("magic", [b"PK\x03\x04", b"\x80\x02"], ids=["zip", "bare"])
def test_weights_pickle_is_refused_unread(box, tmp_path, magic):
    (tmp_path / "w.safetensors").write_bytes(magic + b"\0" * 64)
    box.zoo("run", "dcgan", "--weights", "w.safetensors", "-o", "x.png", says=("is a PyTorch pickle", "never unpickles"))


def test_weights_for_another_model(box, tmp_path):
    (tmp_path / "w.safetensors").write_bytes(shipped("cnn").read_bytes())
    box.zoo("run", "dcgan", "--weights", "w.safetensors", "-o", "x.png", says=("holds weights for model 'cnn'",))


def test_weights_that_do_not_fit_the_model(box, tmp_path):
    header = {**F32_HEADER}
    (tmp_path / "w.safetensors").write_bytes(safetensors_bytes(header, b"\0" * 8))
    box.zoo("run", "dcgan", "--weights", "w.safetensors", "-o", "x.png", says=("does not fit model 'dcgan'",))


def test_resume_from_a_plain_weights_file(box, tmp_path):
    (tmp_path / "w.ckpt.safetensors").write_bytes(shipped().read_bytes())
    box.zoo("train", "dcgan", "--resume", "--out", "w.safetensors", "--data", "no-data",
            says=("not a training checkpoint", "without --resume"))


def test_resume_from_a_pickled_checkpoint(box, tmp_path):
    (tmp_path / "w.ckpt.safetensors").write_bytes(b"PK\x03\x04" + b"\0" * 64)  # read by the header reader alone
    box.zoo("train", "dcgan", "--resume", "--out", "w.safetensors", "--data", "no-data", says=("is a PyTorch pickle",))


def test_resume_without_a_checkpoint(box):
    box.zoo("train", "dcgan", "--resume", "--out", "w.safetensors", "--data", "no-data", says=("no checkpoint",))


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("variable, value, fragment", [
    ("ZOO_EXPORT_OPSET", "3", "between 7 and 23"),
    ("ZOO_EXPORT_OPSET", "99", "between 7 and 23"),
    ("ZOO_EXPORT_ATOL", "-1", "at least 0"),
    ("ZOO_EXPORT_MAX_QUALITY_DROP", "2", "between 0.0 and 1.0"),
    ("ZOO_RUN_ONNX_THREADS", "-1", "at least 0"),
    ("ZOO_TRAIN_CHECKPOINT_EVERY", "0", "at least 1"),
    ("ZOO_EXPORT_VALIDATE_BATCH_SIZES", "[1, 0]", "at least 1"),
    ("ZOO_EXPORT_OPSET", "eighteen", "not a number"),
    ("ZOO_STRICT_PLUGINS", "maybe", "expected 1/0"),
])
def test_environment_values_out_of_range(box, variable, value, fragment):
    box.zoo("list", env={variable: value}, says=(variable, fragment))


def test_zoo_config_naming_a_missing_file(box):
    box.zoo("list", env={"ZOO_CONFIG": "missing.toml"}, says=("ZOO_CONFIG=missing.toml names no file",))


@pytest.mark.parametrize("text, fragment", [
    ("[export\nopset = 18", "fix the TOML syntax"),
    ("[export]\nopsett = 18", "unknown key export.opsett"),
    ("[export]\nopset = '18'", "must be an integer"),
    ("[exports]\nopset = 18", "unknown section [exports]"),
    ("[export]\nopset = 2", "between 7 and 23"),
])
def test_project_config_errors(box, tmp_path, text, fragment):
    (tmp_path / "zoo.toml").write_text(text)
    box.zoo("list", says=(fragment,))


# ---------------------------------------------------------------- command-line values


@pytest.mark.parametrize("argv, fragment", [
    (["run", "dcgan", "--n", "0"], "--n: 0 is too small"),
    (["run", "dcgan", "--n", "-1"], "--n: -1 is too small"),
    (["run", "dcgan", "--n", "many"], "not a whole number"),
    (["run", "dcgan", "--seed", "-1"], "--seed: -1 is too small"),
    (["run", "dcgan", "--seed", str(2**32)], "too large"),
    (["run", "dcgan", "--temperature", "-1"], "--temperature"),
    (["run", "stylegan", "--truncation", "2"], "at most 1"),
    (["run", "dcgan", "--batch-size", "0"], "--batch-size"),
    (["train", "dcgan", "--out", "w.safetensors", "--epochs", "-1"], "--epochs: -1 is too small"),
    (["train", "dcgan", "--out", "w.safetensors", "--epochs", "0"], "--epochs: 0 is too small"),
    (["train", "dcgan", "--out", "w.safetensors", "--batch-size", "0"], "--batch-size"),
    (["train", "dcgan", "--out", "w.safetensors", "--lr", "0"], "--lr: 0 is out of range"),
    (["train", "dcgan", "--out", "w.safetensors", "--lr", "nan"], "not a finite number"),
    (["train", "dcgan", "--out", "w.safetensors", "--max-steps", "0"], "--max-steps"),
    (["train", "dcgan", "--out", "w.safetensors", "--nproc-per-node", "0"], "--nproc-per-node"),
    (["bench", "dcgan", "--batch", "0"], "--batch: 0 is too small"),
    (["bench", "dcgan", "--batch", "1,,8"], "comma-separated"),
    (["bench", "dcgan", "--runs", "0"], "--runs"),
    (["export", "dcgan", "--opset", "0"], "--opset"),
    (["export", "dcgan", "--atol", "-1"], "--atol"),
    (["eval", "cartpole", "--episodes", "0"], "--episodes"),
])
def test_values_refused_at_parse_time(box, argv, fragment):
    box.zoo(*argv, says=(fragment, "--help"))


def test_run_output_naming_an_existing_folder(box, tmp_path):
    (tmp_path / "samples.png").mkdir()
    box.zoo("run", "dcgan", "--n", "4", "-o", "samples.png", says=("is a folder", "name the file"))


def test_train_output_must_be_safetensors(box):
    box.zoo("train", "dcgan", "--out", "w.pt", "--data", "no-data", says=("must end in .safetensors",))


def test_run_n_beyond_memory_is_refused_before_allocating(box):
    box.zoo("run", "dcgan", "--n", "10000000", "-o", "x.png", says=("--n 10000000 would need about", "at most"))


def test_new_plugin_dir_naming_a_file(box, tmp_path):
    (tmp_path / "existing").write_text("mine")
    box.zoo("new-plugin", "fresh", "--dir", "existing", says=("exists and is not a folder",))


def test_new_plugin_name_with_a_trailing_newline(box):
    box.zoo("new-plugin", "fresh\n", says=("plugin name",))


def test_prompt_outside_the_vocabulary(box):
    box.zoo("run", "ngram", "--prompt", "h\u00e9llo \u2603", says=("never saw in training", "\u00e9\u2603"))


# ---------------------------------------------------------------- pictures and folders


def write_png(path: Path, array, mode: str | None = None) -> Path:
    from PIL import Image

    Image.fromarray(array, mode).save(path)
    return path


def digit(light_on_dark: bool = True):
    import numpy as np

    canvas = np.zeros((28, 28), dtype=np.uint8)
    canvas[6:22, 12:16] = 255
    return canvas if light_on_dark else 255 - canvas


def test_image_missing(box):
    box.zoo("run", "cnn", "--image", "missing.png", says=("does not exist",))


def test_image_not_a_picture(box, tmp_path):
    (tmp_path / "x.png").write_text("not a png")
    box.zoo("run", "cnn", "--image", "x.png", says=("not an image Pillow can read",))


def test_image_decompression_bomb(box, tmp_path):
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # A 20000x20000 grey PNG header with almost no data: Pillow must refuse it before decoding.
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(png)
    box.zoo("run", "cnn", "--image", "bomb.png", says=("too large to decode safely",))


def test_image_between_the_pixel_limit_and_twice_it(box, tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    # Between MAX_IMAGE_PIXELS and twice it Pillow only warns and decodes; a lowered limit makes
    # a 40x40 picture (1600 pixels) such a case without allocating a real bomb.
    write_png(tmp_path / "big.png", np.zeros((40, 40), dtype=np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    box.zoo("run", "cnn", "--image", "big.png", says=("too large to decode safely", "over 1000 pixels"))


def test_image_fifo_does_not_hang(box, tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    box.zoo("run", "cnn", "--image", "pipe.png", says=("is a FIFO",), child=True, timeout=60)


def test_input_dir_with_a_fifo_does_not_hang(box, tmp_path):
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "a.png", digit())
    os.mkfifo(tmp_path / "in" / "b.png")
    box.zoo("run", "cnn", "--input-dir", "in", "-o", "results", says=("in/b.png is a FIFO",), child=True, timeout=60,
            writes=())


def test_input_dir_with_a_broken_picture(box, tmp_path):
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "a.png", digit())
    (tmp_path / "in" / "b.png").write_bytes(b"\x89PNG broken")
    box.zoo("run", "cnn", "--input-dir", "in", "-o", "results", says=("b.png is not an image",), writes=("results",))
    assert not (tmp_path / "results" / "predictions.jsonl").exists()


def test_input_dir_that_is_a_file(box, tmp_path):
    (tmp_path / "in").write_text("x")
    box.zoo("run", "cnn", "--input-dir", "in", "-o", "results", says=("is not a folder",))


def test_input_dir_without_pictures(box, tmp_path):
    (tmp_path / "in").mkdir()
    box.zoo("run", "cnn", "--input-dir", "in", "-o", "results", says=("holds no",))


@pytest.mark.parametrize("ink_light", [False, True], ids=["dark-ink", "light-ink"])
def test_rgba_picture_keeps_its_strokes(tmp_path, ink_light):
    """A digit drawn on a transparent canvas reads as the same digit drawn on an opaque one."""
    import numpy as np

    from zoo.tasks.image_classification import load_picture

    strokes = digit() > 0
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)
    rgba[..., :3] = 255 if ink_light else 0  # the transparent pixels' colour says nothing
    rgba[strokes, :3] = 255 if ink_light else 0
    rgba[strokes, 3] = 255
    rgba[~strokes, :3] = 0 if ink_light else 255
    transparent = write_png(tmp_path / "t.png", rgba, "RGBA")
    rgba[~strokes, :3] = 255 if ink_light else 0  # hostile: background colour equal to the ink, hidden only by alpha
    hostile = write_png(tmp_path / "h.png", rgba, "RGBA")
    opaque = write_png(tmp_path / "o.png", digit(light_on_dark=True))
    expected = load_picture(opaque)
    np.testing.assert_array_equal(load_picture(transparent), expected)
    np.testing.assert_array_equal(load_picture(hostile), expected)


# ---------------------------------------------------------------- plugins


BROKEN_PLUGINS = {
    "exits_at_import": "import sys\nsys.exit(3)\n",
    "exits_in_hook": "import sys, zoo\n@zoo.hookimpl\ndef register_models(register):\n    sys.exit(4)\n",
    "string_weights": '''
import zoo
@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(name="stringweights", task="image-generation", builder="string_weights:build",
        graphs=(zoo.GraphSpec(inputs=(zoo.TensorSpec("z", ("batch", 4)),), outputs=(zoo.TensorSpec("image", ("batch", 4)),)),),
        weights={"default": "weights/default.safetensors"}))
''',
    "bad_hub": '''
import zoo
@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(name="badhub", task="image-generation", builder="bad_hub:build",
        graphs=(zoo.GraphSpec(inputs=(zoo.TensorSpec("z", ("batch", 4)),), outputs=(zoo.TensorSpec("image", ("batch", 4)),)),),
        weights={"default": zoo.WeightsSpec(uri="hf://not a repo//x.safetensors")}))
''',
    "string_config": '''
import zoo
@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(name="stringconfig", task="image-generation", builder="string_config:build",
        graphs=(zoo.GraphSpec(inputs=(zoo.TensorSpec("z", ("batch", 4)),), outputs=(zoo.TensorSpec("image", ("batch", 4)),)),),
        config="width=4"))
''',
    "newline_name": '''
import zoo
@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(name="newline\\n", task="image-generation", builder="newline_name:build",
        graphs=(zoo.GraphSpec(inputs=(zoo.TensorSpec("z", ("batch", 4)),), outputs=(zoo.TensorSpec("image", ("batch", 4)),)),)))
''',
    "undecorated": "def register_models(register):\n    pass\n",
}


@pytest.mark.parametrize("name, problem", [
    ("exits_at_import", "failed to load: SystemExit"),
    ("exits_in_hook", "raised in register_models: SystemExit"),
    ("string_weights", "must be a WeightsSpec"),
    ("bad_hub", "must look like hf://"),
    ("string_config", "config must be dict"),
    ("newline_name", "model name"),
    ("undecorated", "without @zoo.hookimpl"),
])
def test_a_broken_plugin_leaves_the_others_working(box, plugin_dir, name, problem):
    plugin_dir(name, BROKEN_PLUGINS[name])
    listed = box.zoo("list", code=0)
    assert "dcgan" in listed.stdout and f"plugin '{name}'" in listed.stderr
    plugins = {p["name"]: p for p in json.loads(box.zoo("plugins", "--json", code=0).stdout)}
    assert any(problem in error for error in plugins[name]["errors"]), plugins[name]
    text = box.zoo("plugins", code=0).stdout
    assert f"{name:<14} error" in text


def test_a_disabled_plugin_is_named_instead_of_unknown(box):
    box.zoo("export", "dcgan", env={"ZOO_DISABLE_PLUGINS": "dcgan"}, says=("disabled by ZOO_DISABLE_PLUGINS",))


def test_an_unknown_model_mentions_disabled_plugins(box):
    box.zoo("info", "dcgn", env={"ZOO_DISABLE_PLUGINS": "dcgan"}, says=("unknown model 'dcgn'", "ZOO_DISABLE_PLUGINS"))


def test_a_bug_in_a_plugin_is_reported_not_swallowed(box, plugin_dir, tmp_path):
    plugin_dir("buggy_builder", '''
import zoo
@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(name="buggy", task="image-generation", builder="buggy_builder:build",
        graphs=(zoo.GraphSpec(inputs=(zoo.TensorSpec("z", ("batch", 4)),), outputs=(zoo.TensorSpec("image", ("batch", 4)),)),)))

def build():
    return {}["missing"]
''')
    (tmp_path / "w.safetensors").write_bytes(safetensors_bytes(
        {**F32_HEADER, "__metadata__": {"zoo.model": "buggy", "zoo.config": "{}"}}, b"\0" * 8))
    result = box.zoo("run", "buggy", "--weights", "w.safetensors", "-o", "x.png", code=1)
    lines = result.stderr.splitlines()
    assert lines[0] == "zoo: internal error: KeyError: 'missing'", result.stderr
    assert "issue tracker of the plugin package 'buggy_builder'" in lines[1] and "ZOO_DEBUG=1" in lines[1]
    assert "Traceback" not in result.stderr
    debug = box.zoo("run", "buggy", "--weights", "w.safetensors", "-o", "x.png", code=1, env={"ZOO_DEBUG": "1"})
    assert "Traceback" in debug.stderr


# ---------------------------------------------------------------- writing results


def fake_bundle(folder: Path, model: str = "dcgan", variant: str = "default", graph_bytes: bytes = b"graph") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(graph_bytes)
    manifest = {"format": "aigc-zoo-bundle/1", "model": model, "variant": variant,
                "graphs": {"model": {"file": "model.onnx", "sha256": zoo.file_sha256(folder / "model.onnx"),
                                     "inputs": [], "outputs": []}}}
    (folder / "model.json").write_text(json.dumps(manifest))
    return folder


def test_export_refuses_a_folder_of_the_users_files(box, tmp_path):
    (tmp_path / "out" / "dcgan").mkdir(parents=True)
    (tmp_path / "out" / "dcgan" / "notes.txt").write_text("mine")
    box.zoo("export", "dcgan", "-o", "out", says=("is not empty", "--force"))
    assert (tmp_path / "out" / "dcgan" / "notes.txt").read_text() == "mine"


def test_export_into_a_source_tree_never_deletes_it(box, tmp_path):
    (tmp_path / "plugins" / "dcgan").mkdir(parents=True)
    (tmp_path / "plugins" / "dcgan" / "__init__.py").write_text("source")
    box.zoo("export", "dcgan", "-o", "plugins", says=("is not empty",))


def test_export_never_moves_the_current_folder(box, tmp_path, monkeypatch):
    fake_bundle(tmp_path / "proj" / "dcgan")
    monkeypatch.chdir(tmp_path / "proj" / "dcgan")
    box.zoo("export", "dcgan", "-o", "..", says=("current folder",))
    assert Path.cwd() == tmp_path / "proj" / "dcgan" and (Path.cwd() / "model.json").is_file()


def test_export_refuses_a_bundle_of_another_model(box, tmp_path):
    fake_bundle(tmp_path / "out" / "dcgan", model="gan")
    box.zoo("export", "dcgan", "-o", "out", says=("is not empty",))


def test_export_target_that_is_a_file(box, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "dcgan").write_text("mine")
    box.zoo("export", "dcgan", "-o", "out", says=("exists and is not a folder",))


def test_export_target_that_is_a_link(box, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "dcgan").symlink_to(tmp_path / "elsewhere")
    box.zoo("export", "dcgan", "-o", "out", says=("exists and is not a folder",))


def test_output_folder_below_a_file(box, tmp_path):
    (tmp_path / "a-file").write_text("x")
    box.zoo("export", "dcgan", "-o", "a-file/out", says=("cannot write to", "-o"))


def test_bad_cache_dir_is_named_as_such(box, tmp_path):
    (tmp_path / "a-file").write_text("x")
    box.zoo("run", "dcgan", "--backend", "onnx", "--n", "4", "-o", "x.png", env={"ZOO_CACHE_DIR": "a-file"},
            says=("ZOO_CACHE_DIR",))


def test_atomic_directory_replaces_only_a_recognised_result(tmp_path):
    from zoo.errors import ZooError
    from zoo.files import atomic_directory

    target = fake_bundle(tmp_path / "dcgan")
    with atomic_directory(target, replaceable=lambda p: (p / "model.json").is_file()) as temporary:
        (temporary / "new").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ZooError, match="not empty"):
        with atomic_directory(target, replaceable=lambda p: False):
            pass
    with atomic_directory(target, replaceable=lambda p: False, force=True) as temporary:
        (temporary / "new").write_text("newer")
    assert (target / "notes.txt").read_text() == "mine" and (target / "new").read_text() == "newer"
    assert not leftovers(tmp_path)


def test_a_failure_inside_atomic_directory_keeps_the_previous_result(tmp_path):
    from zoo.files import atomic_directory

    target = fake_bundle(tmp_path / "dcgan")
    before = snapshot(tmp_path)
    with pytest.raises(RuntimeError):
        with atomic_directory(target, replaceable=lambda p: True) as temporary:
            (temporary / "model.onnx").write_bytes(b"half")
            raise RuntimeError("the exporter failed half-way")
    assert snapshot(tmp_path) == before and not leftovers(tmp_path)


def test_atomic_file_gives_results_the_umask_mode(tmp_path):
    from zoo.files import atomic_file

    previous = os.umask(0o027)
    try:
        with atomic_file(tmp_path / "w.bin") as temporary:
            temporary.unlink()
            fd = os.open(temporary, os.O_CREAT | os.O_WRONLY, 0o600)  # as safetensors creates its file
            os.close(fd)
    finally:
        os.umask(previous)
    assert (tmp_path / "w.bin").stat().st_mode & 0o777 == 0o640


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_of_a_dead_process_are_cleaned_by_the_next_write(box, tmp_path):
    stale = tmp_path / f".x.png.zoo-{dead_pid()}-abc.tmp"
    stale.write_bytes(b"half a png")
    box.zoo("run", "dcgan", "--n", "4", "-o", "x.png", code=0, writes=("x.png", stale.name))
    assert not stale.exists() and (tmp_path / "x.png").read_bytes().startswith(b"\x89PNG")


def test_a_live_process_keeps_its_temporaries(tmp_path):
    from zoo.files import clean_stale

    live = tmp_path / f".x.png.zoo-{os.getppid()}-abc.tmp"
    live.write_bytes(b"being written")
    clean_stale(tmp_path / "x.png")
    assert live.exists()


def test_an_interrupted_swap_is_undone_on_the_next_run(tmp_path):
    from zoo.files import clean_stale

    old = fake_bundle(tmp_path / f".dcgan.zoo-{dead_pid()}-xyz.old")
    clean_stale(tmp_path / "dcgan")
    assert (tmp_path / "dcgan" / "model.json").is_file() and not old.exists()


def test_weights_written_by_the_zoo_respect_the_umask(tmp_path):
    import torch

    previous = os.umask(0o022)
    try:
        zoo.weights.save({"w": torch.ones(2)}, tmp_path / "w.safetensors", "dcgan", {})
    finally:
        os.umask(previous)
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------- signals


def export_and_signal(tmp_path: Path, number: int) -> subprocess.CompletedProcess:
    """Start `zoo export dcgan`, send `number` once its temporary bundle exists, and wait."""
    child = subprocess.Popen([sys.executable, "-m", "zoo", "export", "dcgan", "-o", str(tmp_path / "out")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not list((tmp_path / "out").glob(".dcgan.zoo-*.tmp")) and child.poll() is None:
        assert time.monotonic() < deadline, "the export never started writing"
        time.sleep(0.05)
    time.sleep(0.3)
    child.send_signal(number)
    stdout, stderr = child.communicate(timeout=60)
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


@pytest.mark.parametrize("number, code, word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_during_export_leaves_the_previous_bundle(tmp_path, number, code, word):
    previous = fake_bundle(tmp_path / "out" / "dcgan")
    before = snapshot(tmp_path)
    result = export_and_signal(tmp_path, number)
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("zoo:")]
    assert lines == [f"zoo: {word} ({signal.Signals(number).name})"], result.stderr
    assert "Traceback" not in result.stderr and "could not export" not in result.stderr
    assert snapshot(tmp_path) == before and not leftovers(tmp_path)
    assert (previous / "model.onnx").read_bytes() == b"graph"


# ---------------------------------------------------------------- the export cache


@pytest.fixture
def counted_exports(monkeypatch):
    """cached_bundle with an export that writes a small valid bundle and counts its calls."""
    from zoo import exporting
    from zoo.files import atomic_directory

    calls = []

    def export_model(reference, target, out, **kwargs):
        calls.append(reference)
        time.sleep(0.3)  # long enough for a second process to arrive while this one holds the lock
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_directory(out / "dcgan") as temporary:
            fake_bundle(temporary, graph_bytes=b"exported graph")
        return out / "dcgan"

    monkeypatch.setattr(exporting, "export_model", export_model)
    return calls


def test_cache_entry_with_a_garbled_graph_is_rebuilt(counted_exports, capsys):
    from zoo.exporting import cached_bundle

    bundle = cached_bundle("dcgan")
    (bundle / "model.onnx").write_bytes(b"exported gra")  # truncated by a crash or a full disk
    assert cached_bundle("dcgan") == bundle and len(counted_exports) == 2
    assert (bundle / "model.onnx").read_bytes() == b"exported graph"
    assert "is damaged" in capsys.readouterr().err
    assert cached_bundle("dcgan") == bundle and len(counted_exports) == 2  # a sound entry is reused


@pytest.mark.parametrize("manifest", ["{", "[]", '{"model": "dcgan", "graphs": {"model": {"file": "../../escape.onnx"}}}'])
def test_cache_entry_with_a_bad_manifest_is_rebuilt(counted_exports, manifest):
    from zoo.exporting import cached_bundle

    bundle = cached_bundle("dcgan")
    (bundle / "model.json").write_text(manifest)
    cached_bundle("dcgan")
    assert len(counted_exports) == 2 and json.loads((bundle / "model.json").read_text())["model"] == "dcgan"


def test_two_processes_filling_the_cache_export_once(counted_exports):
    from zoo.exporting import cached_bundle

    results = []
    threads = [threading.Thread(target=lambda: results.append(cached_bundle("dcgan"))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(counted_exports) == 1 and len(set(results)) == 1


# ---------------------------------------------------------------- reading bundles


@pytest.mark.parametrize("manifest, fragment", [
    ("{", "is not valid JSON"),
    ("[1]", "no graphs"),
    ('{"model": "dcgan", "graphs": {}}', "no graphs"),
    ('{"model": "dcgan", "graphs": {"model": {"file": "../outside.onnx"}}}', "points outside the bundle"),
    ('{"model": "dcgan", "graphs": {"model": {"file": "/etc/hostname"}}}', "points outside the bundle"),
    ('{"model": "dcgan", "graphs": {"model": {}}}', "names no file"),
])
def test_bundle_manifest_faults(box, tmp_path, manifest, fragment):
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "model.json").write_text(manifest)
    (tmp_path / "outside.onnx").write_bytes(b"not ours")
    box.zoo("build-engine", "bundle", says=(fragment,))


def test_bundle_graph_linked_outside_is_refused(tmp_path):
    from zoo.bundles import BundleError, BundleRunner

    bundle = fake_bundle(tmp_path / "bundle")
    (bundle / "model.onnx").unlink()
    (tmp_path / "secret.onnx").write_bytes(b"graph")
    (bundle / "model.onnx").symlink_to(tmp_path / "secret.onnx")
    with pytest.raises(BundleError, match="points outside the bundle"):
        BundleRunner(bundle)


def test_bundle_graph_altered_after_export_is_refused(tmp_path):
    from zoo.bundles import BundleError, BundleRunner

    bundle = fake_bundle(tmp_path / "bundle")
    (bundle / "model.onnx").write_bytes(b"grapH")
    with pytest.raises(BundleError, match="does not match its manifest"):
        BundleRunner(bundle)


def test_bundle_graph_missing_is_refused(tmp_path):
    from zoo.bundles import BundleError, BundleRunner

    bundle = fake_bundle(tmp_path / "bundle")
    (bundle / "model.onnx").unlink()
    with pytest.raises(BundleError, match="is missing from the bundle"):
        BundleRunner(bundle)


def test_folder_without_a_manifest(box, tmp_path):
    (tmp_path / "bundle").mkdir()
    box.zoo("build-engine", "bundle", says=("no model.json",))


# ---------------------------------------------------------------- failures inside libraries


def failing_exporter(monkeypatch, error):
    import torch

    def export(*args, **kwargs):
        raise error

    monkeypatch.setattr(torch.onnx, "export", export)


def test_a_full_disk_inside_the_exporter_is_reported_as_a_full_disk(box, monkeypatch):
    import errno

    try:
        raise OSError(errno.ENOSPC, "No space left on device", "out/dcgan/model.onnx")
    except OSError as cause:
        wrapped = RuntimeError("\x1b[31mFailed to export the model\x1b[0m")
        wrapped.__cause__ = cause
    failing_exporter(monkeypatch, wrapped)
    box.zoo("export", "dcgan", "-o", "out", says=("No space left on device", "free some disk space"), writes=("out",))


def test_an_exporter_failure_is_one_line_without_colour_codes(box, monkeypatch):
    failing_exporter(monkeypatch, RuntimeError("\x1b[31mFailed\x1b[0m to export\n\nmany\nlines"))
    box.zoo("export", "dcgan", "-o", "out", says=("could not export graph 'model'", "Failed to export many lines"), writes=("out",))


def test_ctrl_c_wrapped_by_the_exporter_is_an_interrupt(box, monkeypatch):
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as cause:
        wrapped = RuntimeError("export failed")
        wrapped.__context__ = cause
    failing_exporter(monkeypatch, wrapped)
    result = box.zoo("export", "dcgan", "-o", "out", code=130, writes=("out",))
    assert result.stderr.strip().splitlines()[-1] == "zoo: interrupted (SIGINT)"
