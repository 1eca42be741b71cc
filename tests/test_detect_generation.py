"""Decoding against Hugging Face's own processors and ``generate``; seeded sampling independent of the batch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from seethrough.audit.detect.generation import (DEFAULT_DECODINGS, choose_tokens, continuations,  # noqa: E402
                                                document_seed, parse_decoding, parse_decodings, process_logits)
from seethrough.errors import ConfigError  # noqa: E402


@pytest.fixture(scope="module")
def model():
    from seethrough.train.model import build_model

    return build_model("tiny", 50, 128, 0, seed=2).eval()


@pytest.mark.parametrize("name", list(DEFAULT_DECODINGS) + ["top_k_3+rep_1.5", "top_p_0.5", "temperature_1.7"])
def test_processing_equals_hugging_face_processors(name):
    from transformers.generation.logits_process import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)

    decoding = parse_decoding(name)
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 40, generator=gen) * 3
    logits[0, :5] = logits[0, 5]  # ties at the top-k boundary
    seen = torch.randint(0, 40, (6, 9), generator=gen)
    hf = logits.clone()
    if decoding.repetition_penalty:
        hf = RepetitionPenaltyLogitsProcessor(decoding.repetition_penalty)(seen, hf)
    if not decoding.greedy:
        for warper in ([TemperatureLogitsWarper(decoding.temperature)] if decoding.temperature != 1.0 else []) + \
                ([TopKLogitsWarper(decoding.top_k)] if decoding.top_k else []) + \
                ([TopPLogitsWarper(decoding.top_p)] if decoding.top_p else []):
            hf = warper(seen, hf)
    ours = process_logits(logits, seen, decoding)
    assert torch.equal(torch.isinf(ours), torch.isinf(hf))
    torch.testing.assert_close(torch.softmax(ours, -1), torch.softmax(hf, -1))


def test_greedy_with_penalty_equals_hugging_face_generate(model):
    prompts = [[3, 9, 4, 17, 4, 22], [5, 5, 5, 1, 2, 8], [7, 30, 2, 2, 41, 0]]
    for name in ("greedy", "greedy+rep"):
        decoding = parse_decoding(name)
        ours = continuations(model, prompts, [12, 12, 12], decoding, [0, 0, 0], forbidden=[0])
        hf = model.generate(torch.tensor(prompts), max_new_tokens=12, min_new_tokens=12, do_sample=False,
                            repetition_penalty=decoding.repetition_penalty or 1.0, eos_token_id=0, pad_token_id=0)
        assert ours == hf[:, 6:].tolist(), name
        assert all(0 not in row for row in ours)  # the end-of-text token is masked, as min_new_tokens does


def test_inverse_cdf_draws_follow_the_distribution():
    """With uniforms on an even grid, each token is drawn as often as its probability says (to 1/n)."""
    logits = torch.tensor([[2.0, 0.5, -1.0, 1.0, -torch.inf, 0.0]])
    probs = torch.softmax(logits.double(), -1)[0].numpy()
    n = 10_000
    decoding = parse_decoding("sampling")
    drawn = [int(choose_tokens(logits, decoding, np.array([(i + 0.5) / n]))[0]) for i in range(0, n, 7)]
    counts = np.bincount(drawn, minlength=6) / len(drawn)
    np.testing.assert_allclose(counts, probs, atol=2e-3)
    assert counts[4] == 0  # a masked token is never drawn
    assert int(choose_tokens(logits, decoding, np.array([1.0]))[0]) == 5  # u at the very end: the last possible token


def test_sampling_is_seeded_per_document_and_independent_of_the_batch(model):
    prompts = [[1 + i % 7, 2, 3 + i % 5, 4] for i in range(9)] + [[8, 9]]  # two prompt lengths
    lengths = [5 + (i % 4) for i in range(10)]
    decoding = parse_decoding("top_k_40+rep")
    seeds = [document_seed(0, f"doc{i}", decoding.name) for i in range(10)]
    together = continuations(model, prompts, lengths, decoding, seeds, batch_size=16)
    alone = [continuations(model, [p], [n], decoding, [s])[0] for p, n, s in zip(prompts, lengths, seeds)]
    assert together == alone
    assert [len(r) for r in together] == lengths
    reseeded = continuations(model, prompts, lengths, decoding, [s + 1 for s in seeds])
    assert reseeded != together
    assert document_seed(0, "a", "sampling") != document_seed(0, "a", "greedy") != document_seed(1, "a", "greedy")


def test_decoding_names():
    assert len(DEFAULT_DECODINGS) == 10 and [d.name for d in parse_decodings(None)] == list(DEFAULT_DECODINGS)
    d = parse_decoding("top_p_0.96+rep")
    assert (d.top_p, d.repetition_penalty, d.greedy) == (0.96, 1.2, False)
    assert parse_decoding("temperature_0.7").temperature == 0.7 and parse_decoding("greedy").greedy
    assert parse_decoding("top_k_40+rep_1.5").repetition_penalty == 1.5
    for bad, message in (("beam", "is not a decoding"), ("top_p_1.5", "top-p must be in"),
                         ("temperature_0", "temperature must be above 0"), ("top_k_0", "top-k must be at least 1"),
                         ("sampling+rep_0", "repetition penalty must be above 0"), ("top_p_1.2.3", "is not a number")):
        with pytest.raises(ConfigError, match=message):
            parse_decoding(bad)
    with pytest.raises(ConfigError, match="--decoding is empty"):
        parse_decodings(" , ")
