"""The n-gram recipe: no gradients; its single step counts the training split."""

import numpy as np
import torch

from zoo.plugins.ngram.model import build, count_tables
from zoo.text import METRIC_DESCRIPTIONS, TRAINING_DESCRIPTION, CharTokenizer, read_text, write_tokenizer_json
from zoo.training import Recipe


class NGramRecipe(Recipe):
    data_description = TRAINING_DESCRIPTION
    metric_descriptions = METRIC_DESCRIPTIONS

    def __init__(self, spec, options):
        super().__init__(spec, options)
        text = read_text(options.data, "train")
        self.tokenizer = CharTokenizer.from_text(text)
        if options.out is not None:
            write_tokenizer_json(self.tokenizer.to_json(), options.out.with_name(options.out.name.removesuffix(".safetensors") + ".tokenizer.json"))
        self.ids = np.array(self.tokenizer.encode(text), dtype=np.int64)
        if options.limit:
            self.ids = self.ids[: options.limit]
        self.model = build(**self.config)
        self.networks = {"model": self.model}
        self.shipped = "model"

    def batches(self, epoch):
        return [self.ids]  # one step counts everything

    def step(self, ids):
        n, vocab = self.config["n"], self.config["vocab_size"]
        tables = count_tables(ids, vocab, n, self.config["discount"])
        self.config = {**self.config, "contexts": [len(tables[f"keys_{k}"]) for k in range(1, n)]}
        self.model = build(**self.config)
        self.model.load_state_dict({k: torch.from_numpy(v) for k, v in tables.items()})
        self.networks["model"] = self.model
        return {"contexts": float(sum(self.config["contexts"]))}

    def evaluate(self):
        from zoo.runtime import TorchBackend
        from zoo.tasks.text_generation import heldout_metrics

        graph = self.spec.graph()
        return heldout_metrics(TorchBackend(self.model.eval(), graph), self.tokenizer, self.options.data)
