"""One data root for every command: --data DIR, else $ZOO_DATA, else [data] root; `zoo data fetch` from a
Hugging Face cache the test lays out itself (no network)."""

import gzip
import hashlib
import io

import numpy as np
import pytest

from conftest import DATA, MNIST, assert_clean_error, needs_data, zoo_cli
from zoo.data import DATASETS, data_root, dataset_dir


def test_data_root_comes_from_the_flag_then_zoo_data_then_the_config_file(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "zoo.toml").write_text('[data]\nroot = "../datasets"\n')
    monkeypatch.chdir(project)
    assert data_root() == tmp_path / "datasets"  # relative to the file that sets it
    monkeypatch.setenv("ZOO_DATA", str(tmp_path / "elsewhere"))
    assert data_root() == tmp_path / "elsewhere"
    assert data_root(tmp_path / "flag") == tmp_path / "flag"


def test_packaged_default_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = data_root()
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert data_root() == first and first.is_absolute()


def test_a_missing_data_set_says_which_files_go_where(tmp_path):
    result = zoo_cli("eval", "dcgan", "--data", tmp_path / "empty", cwd=tmp_path)
    assert_clean_error(result, "t10k-images-idx3-ubyte.gz", str(tmp_path / "empty" / "mnist"), "zoo data fetch mnist")
    result = zoo_cli("eval", "gpt2", env={"ZOO_DATA": str(tmp_path / "none")}, cwd=tmp_path)
    assert_clean_error(result, "input.txt", str(tmp_path / "none" / "tinyshakespeare"))


@needs_data
def test_data_is_found_from_any_working_directory(tmp_path):
    listed = zoo_cli("data", "list", "--json", env={"ZOO_DATA": str(DATA)}, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert '"folder": null' not in listed.stdout
    # --data is the data root in every command; the data set's own folder is accepted too
    assert dataset_dir(DATA, "mnist") == dataset_dir(MNIST, "mnist") == MNIST


def _lay_out_hub_cache(cache, repo_id, revision, files):
    """huggingface_hub's cache layout: refs/<revision> names a commit, snapshots/<commit>/ holds the files."""
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    repo = cache / ("datasets--" + repo_id.replace("/", "--"))
    (repo / "refs" / revision).parent.mkdir(parents=True, exist_ok=True)
    (repo / "refs" / revision).write_text(commit)
    for name, table in files.items():
        import pyarrow.parquet as pq

        path = repo / "snapshots" / commit / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)


def _pngs(images):
    from PIL import Image

    pngs = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
        pngs.append({"bytes": buffer.getvalue(), "path": None})
    return pngs


def _mnist_table(pngs, labels):
    import pyarrow as pa

    return pa.table({"image": pngs, "label": labels.astype(np.int64)})


@needs_data
def test_fetch_builds_the_data_sets_from_the_hub_cache_and_checks_them(tmp_path):
    pa = pytest.importorskip("pyarrow")
    from zoo.data import read_mnist

    images, labels = read_mnist(DATA, "all")
    pngs = _pngs(images)
    text = (DATA / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8")
    cache = tmp_path / "hub"
    _lay_out_hub_cache(cache, "ylecun/mnist", "main", {"mnist/test-00000-of-00001.parquet": _mnist_table(pngs, labels)})
    cut1, cut2 = 1003854, 1003854 + 55770
    splits = {"train": text[:cut1], "validation": text[cut1:cut2], "test": text[cut2:]}
    _lay_out_hub_cache(cache, "karpathy/tiny_shakespeare", "refs/convert/parquet",
                       {f"default/{split}/0000.parquet": pa.table({"text": [part]}) for split, part in splits.items()})
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    root = tmp_path / "data"
    for name in ("mnist", "tinyshakespeare"):
        fetched = zoo_cli("data", "fetch", name, "--data", root, env=env, cwd=tmp_path)
        assert fetched.returncode == 0, fetched.stderr
        assert fetched.stdout == "" and f"wrote {root / name}/" in fetched.stderr
    for name in ("mnist", "tinyshakespeare"):
        for file in DATASETS[name].files:
            ours, theirs = root / name / file, DATA / name / file
            read = (lambda p: gzip.open(p).read()) if file.endswith(".gz") else (lambda p: p.read_bytes())
            assert read(ours) == read(theirs), file
    again = zoo_cli("data", "fetch", "mnist", "--data", root, env=env, cwd=tmp_path)
    assert again.returncode == 0 and "already" in again.stderr

    # A hub copy that differs from the data the models were trained on is refused, and nothing is written.
    tampered = tmp_path / "tampered"
    labels = labels.copy()
    labels[0] = (labels[0] + 1) % 10
    _lay_out_hub_cache(tampered, "ylecun/mnist", "main", {"mnist/test-00000-of-00001.parquet": _mnist_table(pngs, labels)})
    refused = zoo_cli("data", "fetch", "mnist", "--data", tmp_path / "data2",
                      env={**env, "HF_HUB_CACHE": str(tampered)}, cwd=tmp_path)
    assert_clean_error(refused, "sha256", "nothing was written")
    assert not (tmp_path / "data2" / "mnist").exists()


def test_fetch_without_a_cache_offline_is_a_clean_error(tmp_path):
    result = zoo_cli("data", "fetch", "mnist", "--data", tmp_path / "d",
                     env={"HF_HUB_CACHE": str(tmp_path / "empty-hub"), "HF_HUB_OFFLINE": "1"}, cwd=tmp_path)
    assert_clean_error(result, "hf://datasets/ylecun/mnist")
    assert_clean_error(zoo_cli("data", "fetch", "usps", "--data", tmp_path, cwd=tmp_path), "usps.npz")
