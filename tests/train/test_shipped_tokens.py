"""The shipped sentiment model's tokenizer against the training code, on every real test review
(moved from tests/test_shipped_models.py, which runs with the runtime only: this needs train/).

The reviews come from tests/datasets.py, the runtime tests' reader, and the training side reads
them again with train.data: equal ids for every review also show the two readers agree."""
from __future__ import annotations

from edgeinfer import Model
from train.data import data_dir


def test_runtime_token_ids_equal_training_on_every_test_review(imdb_test) -> None:
    """Tokenizer agreement: the runtime (spec read from the shipped ONNX file) vs the training code."""
    from edgeinfer.tasks.sentiment import tokenizer
    from train.tasks import sentiment_test_data
    texts, _ = imdb_test
    model = Model("sentiment")
    runtime = tokenizer(model)
    training = sentiment_test_data(data_dir(), model.spec.input)  # what export evaluated on
    assert len(training) == len(texts) == 25000
    for i, text in enumerate(texts):
        assert runtime.encode(text) == training.seqs[i].tolist(), i
