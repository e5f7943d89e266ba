"""The GRU recipe: the core's language-model recipe with a character tokenizer."""

from zoo.lm_training import LanguageModelRecipe
from zoo.plugins.rnn.model import build
from zoo.text import CharTokenizer


class GRURecipe(LanguageModelRecipe):

    def make_tokenizer(self, text):
        tokenizer = CharTokenizer.from_text(text)
        return tokenizer, tokenizer.to_json()

    def make_model(self, config):
        return build(**config)
