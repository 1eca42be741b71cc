"""Every detector's score against an independent computation on a tiny model: a direct transformers pass
per text and the published formulas written out plainly in float64; user detectors' bad returns."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import WORDS, word_tokenizer  # noqa: E402

from seethrough.audit.detect.detectors import (ONE_PASS, PAIRED, DetectorSet, call_user_detector,  # noqa: E402
                                               parse_detectors)
from seethrough.errors import ConfigError, QueryError  # noqa: E402

TEXTS = ["the cat sat on the mat", "a big red house and a blue dog ran to the house", "the cat sat on the mat",
         "dog ran", "naïve café of über big red cat sat in the house on the mat and the dog"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from seethrough.corpus.tokenizer import load_tokenizer
    from seethrough.train.model import build_model

    folder = tmp_path_factory.mktemp("detectors")
    tok = load_tokenizer(word_tokenizer(folder / "tokenizer.json"))
    vocab = tok.vocab_size
    model = build_model("tiny", vocab, 64, 0, seed=3).eval()
    reference = build_model("tiny", vocab, 64, 0, seed=11).eval()
    wider = build_model("tiny", vocab + 7, 64, 0, seed=12).eval()  # a padded vocabulary, as Pythia's
    return tok, model, reference, wider


def direct(model, ids):
    """log-softmax rows (positions 1..n-1 predicting tokens 2..n) of one text, in float64, one pass alone."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].double()
    return torch.log_softmax(logits, -1).numpy(), logits.numpy()


def expected_one_pass(model, tok, text):
    ids = tok.encode(text)
    logp, _ = direct(model, ids)
    targets = ids[1:]
    lp = np.array([logp[t, x] for t, x in enumerate(targets)])
    ranks = np.array([int(np.nonzero(np.argsort(-logp[t]) == x)[0][0]) + 1 for t, x in enumerate(targets)])
    p = np.exp(logp)
    entropy = -(p * logp).sum(1)
    mu = (p * logp).sum(1)
    var = (p * logp ** 2).sum(1) - mu ** 2
    return {"likelihood": lp.mean(), "logrank": -np.log(ranks).mean(), "rank": -ranks.mean(),
            "entropy": -entropy.mean(), "gltr": (ranks <= 10).mean(),
            "lrr": abs(lp.mean()) / np.log(ranks).mean(),
            "zlib": lp.mean() / len(zlib.compress(text.encode("utf-8"))),
            "fast_detect_gpt": (lp.sum() - mu.sum()) / math.sqrt(var.sum())}


def test_one_pass_detectors_equal_a_direct_pass_and_the_published_formulas(setup):
    tok, model, _, _ = setup
    got = DetectorSet(ONE_PASS, model, tok, batch_size=2).score(TEXTS)
    for i, text in enumerate(TEXTS):
        want = expected_one_pass(model, tok, text)
        for name in ONE_PASS:
            assert got[name][i] == pytest.approx(want[name], rel=1e-5, abs=1e-6), (name, text)
    assert got["likelihood"][0] == got["likelihood"][2]  # the same text in two batches scores the same


def test_scores_do_not_depend_on_the_batch(setup):
    tok, model, reference, _ = setup
    names = ONE_PASS + PAIRED
    one = DetectorSet(names, model, tok, reference, batch_size=1).score(TEXTS * 3)
    many = DetectorSet(names, model, tok, reference, batch_size=16).score(TEXTS * 3)
    for name in names:
        np.testing.assert_allclose(one[name], many[name], rtol=1e-6, atol=1e-7)


def expected_paired(model, reference, tok, text):
    """Fast-DetectGPT's analytic discrepancy with q sampling and p scoring, and Binoculars as its code
    computes it (performer p, observer q), both logit rows cut to the shared vocabulary."""
    ids = tok.encode(text)
    _, p_logits = direct(model, ids)
    _, q_logits = direct(reference, ids)
    vocab = min(p_logits.shape[1], q_logits.shape[1])
    logp = torch.log_softmax(torch.tensor(p_logits[:, :vocab]), -1).numpy()
    logq = torch.log_softmax(torch.tensor(q_logits[:, :vocab]), -1).numpy()
    q = np.exp(logq)
    targets = ids[1:]
    lp = np.array([logp[t, x] for t, x in enumerate(targets)])
    lq = np.array([logq[t, x] for t, x in enumerate(targets)])
    mean_ref = (q * logp).sum(1)
    var_ref = (q * logp ** 2).sum(1) - mean_ref ** 2
    ppl, x_ppl = -lp.mean(), -(q * logp).sum(1).mean()
    return {"fast_detect_gpt_reference": (lp.sum() - mean_ref.sum()) / math.sqrt(var_ref.sum()),
            "binoculars": -(ppl / x_ppl), "binoculars_paper": -((-lq.mean()) / x_ppl)}


@pytest.mark.parametrize("which", ["same_size", "padded_vocabulary"])
def test_paired_detectors_equal_the_published_formulas(setup, which):
    tok, model, reference, wider = setup
    ref = reference if which == "same_size" else wider
    got = DetectorSet(ONE_PASS + PAIRED, model, tok, ref, batch_size=3).score(TEXTS)
    for i, text in enumerate(TEXTS):
        want = expected_paired(model, ref, tok, text)
        for name in PAIRED:
            assert got[name][i] == pytest.approx(want[name], rel=1e-5, abs=1e-6), (name, text)
        assert got["likelihood"][i] == pytest.approx(expected_one_pass(model, tok, text)["likelihood"], rel=1e-6)


def test_fast_detect_gpt_with_itself_as_reference_is_the_one_pass_criterion(setup):
    tok, model, _, _ = setup
    got = DetectorSet(("fast_detect_gpt", "fast_detect_gpt_reference"), model, tok, model).score(TEXTS)
    np.testing.assert_allclose(got["fast_detect_gpt"], got["fast_detect_gpt_reference"], rtol=1e-6)


def test_long_texts_are_cut_to_the_model_context(setup):
    tok, model, _, _ = setup
    long = " ".join(WORDS[:10] * 20)
    cut = DetectorSet(("likelihood",), model, tok, max_tokens=16)
    assert cut.token_counts([long]) == [16]
    assert cut.score([long])["likelihood"][0] == pytest.approx(
        DetectorSet(("likelihood",), model, tok).score([" ".join(long.split()[:16])])["likelihood"][0], rel=1e-6)


def test_one_token_texts_are_refused(setup):
    tok, model, _, _ = setup
    with pytest.raises(QueryError, match="text 1 has 1 token"):
        DetectorSet(("likelihood",), model, tok).score(["the cat", "cat"])


def test_user_detectors_are_called_and_checked():
    assert list(call_user_detector("m:f", lambda texts: [len(t) for t in texts], ["ab", "c"])) == [2.0, 1.0]
    with pytest.raises(QueryError, match="detector m:f returned 1 score.s. for 2 texts"):
        call_user_detector("m:f", lambda texts: [1.0], ["ab", "c"])
    with pytest.raises(QueryError, match="returned NaN for text 1"):
        call_user_detector("m:f", lambda texts: [1.0, float("nan")], ["ab", "c"])
    with pytest.raises(QueryError, match="returned nothing"):
        call_user_detector("m:f", lambda texts: None, ["ab"])
    with pytest.raises(QueryError, match="not a list of numbers"):
        call_user_detector("m:f", lambda texts: ["high"], ["ab"])
    with pytest.raises(QueryError, match="returned shape"):
        call_user_detector("m:f", lambda texts: [[1.0, 2.0]], ["ab", "c"])


def test_detector_names_are_checked():
    assert parse_detectors(None, False) == ONE_PASS
    assert parse_detectors(None, True) == ONE_PASS + PAIRED
    assert parse_detectors("likelihood,json:loads,likelihood", False) == ("likelihood", "json:loads")
    with pytest.raises(ConfigError, match="'perplexity' is not a detector"):
        parse_detectors("perplexity", False)
    with pytest.raises(ConfigError, match="binoculars need.s. a reference model"):
        parse_detectors("binoculars", False)
    with pytest.raises(ConfigError, match="--reference has no effect without a paired detector"):
        parse_detectors("likelihood", True)
    with pytest.raises(ConfigError, match="cannot import no_such_module_xyz"):
        DetectorSet(("no_such_module_xyz:f",), None, None)
    with pytest.raises(ConfigError, match="json has no function nothing"):
        DetectorSet(("json:nothing",), None, None)
