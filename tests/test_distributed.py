"""Distributed data-parallel training through torchrun: 2 CPU processes on loopback."""

import pytest
import torch

import zoo
from conftest import assert_clean_error, zoo_cli

LINEAR_REGRESSION = '''
import os
import signal

import zoo


@zoo.hookimpl
def register_models(register):
    register(zoo.ModelSpec(
        name="linreg", task="policy", builder="linreg:build", trainer="linreg", config={"features": 8},
        graphs=(zoo.GraphSpec(inputs=(zoo.TensorSpec("x", ("batch", 8)),), outputs=(zoo.TensorSpec("y", ("batch", 1)),)),),
    ))


@zoo.hookimpl
def register_trainers(register):
    register(zoo.TrainerSpec(name="linreg", recipe="linreg:Recipe", defaults={"epochs": 2, "batch_size": 16, "lr": 0.05},
                             hyperparameters=(zoo.Setting("die_on_rank", -1, "kill this rank's worker"),
                                              zoo.Setting("die_at", "", "where: step"))))


def build(features):
    import torch
    return torch.nn.Linear(features, 1)


class Recipe(zoo.Recipe):
    """Deterministic: fixed data, no noise, plain SGD, so data parallelism must not change the result."""

    def __init__(self, spec, options):
        super().__init__(spec, options)
        import torch
        data = torch.Generator().manual_seed(7)
        features = self.config["features"]
        self.x = torch.randn(128, features, generator=data)
        self.y = self.x @ torch.arange(1.0, features + 1)[:, None] + 0.5
        self.model = build(**self.config)
        self.networks = {"model": self.model}
        self.optimizers = {"model": torch.optim.SGD(self.model.parameters(), lr=options.lr)}
        self.shipped = "model"

    def batches(self, epoch):
        return self.index_batches(len(self.x), epoch)

    def step(self, indices):
        import torch
        if self.settings["die_on_rank"] == self.options.rank and self.settings["die_at"] == "step":
            os.kill(os.getpid(), signal.SIGKILL)
        loss = torch.nn.functional.mse_loss(self.model(self.x[indices]), self.y[indices])
        self.optimizers["model"].zero_grad()
        loss.backward()
        self.optimizers["model"].step()
        return {"loss": loss.item()}
'''


@pytest.fixture
def linreg(plugin_dir):
    plugin_dir("linreg", LINEAR_REGRESSION)


def _weights(path):
    return zoo.load("linreg", weights=path).state_dict()


def test_two_processes_match_one_process_on_the_same_samples(linreg, tmp_path):
    single, double = tmp_path / "one.safetensors", tmp_path / "two.safetensors"
    result = zoo_cli("train", "linreg", "--batch-size", "16", "--epochs", "3", "--out", single)
    assert result.returncode == 0, result.stderr
    result = zoo_cli("train", "linreg", "--batch-size", "8", "--epochs", "3", "--nproc-per-node", "2", "--out", double,
                     env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    one, two = _weights(single), _weights(double)
    for name in one:
        torch.testing.assert_close(one[name], two[name], atol=1e-6, rtol=1e-5)
    assert not torch.allclose(one["weight"], zoo.build("linreg").weight)
    from zoo.config import read_toml

    card = read_toml(tmp_path / "two.card.toml")
    assert card["training"]["processes"] == 2 and card["training"]["steps"] == 3 * 8
    assert (tmp_path / "two.ckpt.safetensors").is_file()


def test_distributed_run_resumes_from_a_checkpoint(linreg, tmp_path):
    straight, resumed = tmp_path / "straight.safetensors", tmp_path / "resumed.safetensors"
    assert zoo_cli("train", "linreg", "--batch-size", "8", "--epochs", "2", "--nproc-per-node", "2", "--out", straight).returncode == 0
    assert zoo_cli("train", "linreg", "--batch-size", "8", "--epochs", "1", "--nproc-per-node", "2", "--out", resumed).returncode == 0
    result = zoo_cli("train", "linreg", "--batch-size", "8", "--epochs", "2", "--nproc-per-node", "2", "--resume", "--out", resumed)
    assert result.returncode == 0, result.stderr
    a, b = _weights(straight), _weights(resumed)
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=1e-5)


def test_a_killed_worker_is_reported_cleanly(linreg, tmp_path):
    out = tmp_path / "dead.safetensors"
    result = zoo_cli("train", "linreg", "--nproc-per-node", "2", "--set", "die_on_rank=1", "--set", "die_at=step", "--out", out)
    assert_clean_error(result, "worker rank 1", "SIGKILL", "--resume")
    assert not out.exists()


def test_multi_node_needs_a_rendezvous_endpoint(linreg, tmp_path):
    assert_clean_error(zoo_cli("train", "linreg", "--nnodes", "2", "--out", tmp_path / "w.safetensors"), "--rdzv-endpoint")
