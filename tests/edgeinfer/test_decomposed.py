"""Files whose int8 sequence graph is the decomposed form (issue 18; tests/fixtures *-int8-decomposed):
the runtime runs them like any file, by output name; the step graph (fused operator, same int8
weights) agrees with the sequence graph within the int8 tolerance; a row's answer does not depend
on the rows beside it. Torch-free: committed fixtures only."""
from __future__ import annotations

import numpy as np
import pytest

import edgeinfer
from tests.edgeinfer.conftest import committed
from tests.fixtures import DECOMPOSED, decomposed_name

# the sequence graph rounds activations to 8 bits, the step graph's fused operator reads the same
# int8 weights in fp32: measured up to ~0.01 on these fixtures (probabilities)
STEP_TOLERANCE = 0.03


@pytest.mark.parametrize("base", DECOMPOSED)
def test_stream_steps_agree_with_the_sequence_graph(base: str) -> None:
    model = edgeinfer.load(committed(decomposed_name(base)))
    assert model.spec.precision == "int8" and "decomposed" in model.spec.quantization
    rng = np.random.default_rng(0)
    vocab = model.spec.token_vocab
    if vocab is None:
        x = rng.standard_normal((5, 28, model.spec.input_size)).astype(np.float32)
        whole = model.predict(x)
    else:
        x = rng.integers(2, vocab.vocab_size, (5, 28)).astype(np.int64)
        logits = model.sequence_logits(x)
        whole = np.exp(logits - logits.max(1, keepdims=True))
        whole /= whole.sum(1, keepdims=True)
    stream = model.stream(batch=5)
    for t in range(28):
        stepped = stream.step(x[:, t])
    assert np.abs(whole - stepped).max() <= STEP_TOLERANCE
    fed = model.stream(batch=5)
    fed.feed(x[:, :10])
    fed.feed(x[:, 10:])
    assert np.abs(fed.probabilities - whole).max() <= 1e-6  # feed runs the sequence graph in chunks, state carried


def test_a_row_does_not_depend_on_its_batch() -> None:
    model = edgeinfer.load(committed(decomposed_name("digits-gru2")))
    x = np.random.default_rng(1).standard_normal((4, 28, 28)).astype(np.float32)
    x[1:] *= 40.0  # rows with much larger values beside the first
    assert np.array_equal(model.predict(x)[:1], model.predict(x[:1]))


@pytest.mark.parametrize("base", ["sentiment-gru1-readout", "sentiment-gru1-short"])
def test_texts_padded_in_a_batch_equal_each_alone(base: str) -> None:
    model = edgeinfer.load(committed(decomposed_name(base)))
    vocab = model.spec.token_vocab
    assert vocab is not None
    words = vocab.vocab
    texts = [" ".join(words[i % len(words)] for i in range(n)) for n in (1, 9, 4, 17)]
    together = model.predict(texts)
    for i, text in enumerate(texts):
        # int8 products are exact whatever the padding; the readout's fp32 sums over the padded time
        # axis may round 1 ulp apart on some CPUs (AVX2 without AVX-512: 3e-8 on a logit)
        assert np.abs(together[i] - model.predict([text])[0]).max() <= 1e-6


@pytest.mark.parametrize("base", DECOMPOSED)
def test_the_sequence_graph_is_a_scan_of_int8_products(base: str) -> None:
    """The op names are plain bytes of the file's main graph (the step graph is base64 in the metadata)."""
    decomposed, fused = committed(decomposed_name(base)).read_bytes(), committed(base).read_bytes()
    assert b"Scan" in decomposed and b"MatMulIntegerToFloat" in decomposed
    assert b"Scan" not in fused


@pytest.mark.parametrize("base", ["digits-gru2", "sentiment-gru1-readout", "sentiment-gru1-short"])
def test_stream_batch_runs_the_sequence_graph_from_batch_steps_from(base: str) -> None:
    """These fixtures say io.batch_steps_from = 4: a StreamBatch step of 3 streams runs the step
    graph (each Stream's step), one of 5 runs the sequence graph for one step (run_sequence with
    the state carried, and to the streams' steps within the int8 tolerance)."""
    model = edgeinfer.load(committed(decomposed_name(base)))
    assert model.spec.io.batch_steps_from == 4
    rng = np.random.default_rng(2)
    vocab = model.spec.token_vocab
    x = (rng.integers(2, vocab.vocab_size, (5, 12)).astype(np.int64) if vocab is not None
         else rng.standard_normal((5, 12, model.spec.input_size)).astype(np.float32))
    for n in (3, 5):
        batch = model.stream_batch()
        handles = [batch.open() for _ in range(n)]
        alone = [model.stream() for _ in range(n)]
        state = model.spec.initial_state(n)
        for t in range(12):
            got = batch.step(handles, x[:n, t])
            want = np.stack([s.step(x[i, t] if vocab is None else int(x[i, t])) for i, s in enumerate(alone)])
            logits, state = model.run_sequence(x[:n, t:t + 1], state)
            seq = np.exp(logits - logits.max(1, keepdims=True))
            seq /= seq.sum(1, keepdims=True)
            if n < 4:  # the step graph, as each stream's step (batched kernels round ~1e-8 apart)
                assert np.abs(got - want).max() <= 1e-6
            else:
                assert np.abs(got - seq).max() <= 1e-6
                assert np.abs(got - want).max() <= STEP_TOLERANCE
