"""The GPT-2 recipe: train a byte-level BPE tokenizer on the training split with
`tokenizers`, then the core's language-model recipe on its tokens."""

from zoo.lm_training import LanguageModelRecipe
from zoo.plugins.gpt2.model import build
from zoo.text import HFTokenizer


def train_bpe(text: str, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator([text], trainer=trainer)
    return tokenizer


class GPT2Recipe(LanguageModelRecipe):
    def make_tokenizer(self, text):
        tokenizer = train_bpe(text, self.config["vocab_size"])
        return HFTokenizer(tokenizer), tokenizer.to_str()

    def make_model(self, config):
        return build(**config)
