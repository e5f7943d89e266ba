"""A training recipe shared by the neural language models: random windows of
the tokenised training split, next-token cross-entropy, AdamW with a cosine
schedule, and a wall-clock budget so a run fits the time it was given."""

from __future__ import annotations

import math
import time
from typing import Any

from zoo.specs import Setting
from zoo.text import METRIC_DESCRIPTIONS, TRAINING_DESCRIPTION, read_text, write_tokenizer_json
from zoo.training import Recipe


HYPERPARAMETERS = (
    Setting("block", 128, "training window length, in tokens"),
    Setting("budget_minutes", 0.0, "stop after this much training time; 0 = no budget"),
    Setting("warmup", 100, "steps of linear learning-rate warm-up"),
    Setting("weight_decay", 0.1, "AdamW weight decay of the matrices"),
    Setting("steps_per_epoch", 1000, "batches of random windows in one epoch"),
)


class LanguageModelRecipe(Recipe):
    """Subclasses set `make_tokenizer(text) -> (tokenizer, json_text)` and
    `make_model(config) -> nn.Module` whose forward maps ids (B, T) to logits (B, T, V).
    Their TrainerSpecs declare `HYPERPARAMETERS` (this module imports neither
    torch nor numpy, so a plugin's `__init__` may import it).
    """

    metric_descriptions = METRIC_DESCRIPTIONS
    data_description = TRAINING_DESCRIPTION

    def make_tokenizer(self, text: str):
        raise NotImplementedError

    def make_model(self, config: dict[str, Any]):
        raise NotImplementedError

    def __init__(self, spec, options):
        import numpy as np
        import torch

        super().__init__(spec, options)
        text = read_text(options.data, "train")
        tokenizer, tokenizer_json = self.make_tokenizer(text)
        if options.out is not None:
            write_tokenizer_json(tokenizer_json, options.out.with_name(options.out.name.removesuffix(".safetensors") + ".tokenizer.json"))
        self.tokenizer = tokenizer
        ids = np.array(tokenizer.encode(text), dtype=np.int64)
        if options.limit:
            ids = ids[: options.limit]
        self.ids = torch.from_numpy(ids)
        self.model = self.make_model(self.config).to(options.device)
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.settings["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
            lr=options.lr, betas=(0.9, 0.99),
        )
        self.networks = {"model": self.model}
        self.optimizers = {"model": self.optimizer}
        self.shipped = "model"
        self.steps = 0
        self.started: float | None = None

    def _budget_s(self) -> float:
        return float(self.settings["budget_minutes"]) * 60

    def _out_of_time(self) -> bool:
        return self.started is not None and self._budget_s() > 0 and time.perf_counter() - self.started > self._budget_s()

    def batches(self, epoch):
        import torch

        block = min(int(self.settings["block"]), len(self.ids) - 1)
        shuffle = torch.Generator().manual_seed(self.options.seed * 100_003 + epoch)
        for _ in range(int(self.settings["steps_per_epoch"])):
            if self._out_of_time():
                return
            starts = torch.randint(0, len(self.ids) - block, (self.options.batch_size,), generator=shuffle)
            window = torch.stack([self.ids[s : s + block + 1] for s in starts.tolist()]).to(self.options.device)
            yield window[:, :-1], window[:, 1:]

    def _learning_rate(self) -> float:
        """Linear warm-up, then cosine decay to 10% over the time budget (or the step limit)."""
        if self.steps < self.settings["warmup"]:
            return self.options.lr * (self.steps + 1) / self.settings["warmup"]
        if self._budget_s() > 0:
            progress = (time.perf_counter() - self.started) / self._budget_s()
        elif self.options.max_steps:
            progress = self.steps / self.options.max_steps
        else:
            progress = self.steps / (self.options.epochs * self.settings["steps_per_epoch"])
        return self.options.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))

    def step(self, batch):
        import torch
        import torch.nn.functional as F

        if self.started is None:
            self.started = time.perf_counter()
        inputs, targets = batch
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self._learning_rate()
        logits = self.model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.steps += 1
        return {"loss": loss.item()}

    def evaluate(self):
        """Held-out bits per character through the exported graph's PyTorch module."""
        from zoo.runtime import TorchBackend, graph_module
        from zoo.tasks.text_generation import heldout_metrics

        self.model.eval()
        model = self.model.cpu()
        graph = self.spec.graph()
        return heldout_metrics(TorchBackend(graph_module(model, graph), graph), self.tokenizer, self.options.data)
