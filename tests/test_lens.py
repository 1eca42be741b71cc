"""The logit lens and the tuned lens: the logit lens at the last layer is the model's own logits; at
other layers it is the final norm and unembedding applied by hand; a zero-initialised tuned lens is
the logit lens; training lowers the KL it minimises; a saved lens loads back equal and is refused for
other weights; the held-out metrics equal a plain recomputation; the CLI and its one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from seethrough.audit.probe import (LensSettings, LogitLens, load_tuned_lens, measure_lenses,  # noqa: E402
                                    new_tuned_lens, save_tuned_lens, train_tuned_lens)
from seethrough.audit.probe.lens_report import corpus_windows, lens_metrics  # noqa: E402
from seethrough.errors import ConfigError, ModelError, QueryError  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tiny_run):
    from seethrough.model import load_model, resolve_target

    checkpoint = resolve_target(tiny_run).last
    return load_model(checkpoint, threads=1), checkpoint


def states_and_logits(model, ids):
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    return out.hidden_states, out.logits


def test_logit_lens_at_the_last_layer_is_the_models_logits(tiny):
    model, _ = tiny
    lens = LogitLens(model)
    states, logits = states_and_logits(model, [5, 9, 2, 7, 7, 30])
    assert lens.last_normed  # transformers 5 gives GPT-NeoX's last state after the final norm
    with torch.no_grad():
        assert torch.equal(lens.logits(states[lens.blocks], lens.blocks), logits)
        # the block's own output before the norm, caught by a hook, decodes to the same logits
        caught = []
        handle = model.gpt_neox.layers[-1].register_forward_hook(lambda m, i, o: caught.append(o))
        model(input_ids=torch.tensor([[5, 9, 2, 7, 7, 30]]))
        handle.remove()
        block_out = caught[0][0] if isinstance(caught[0], tuple) else caught[0]
        assert torch.allclose(model.lm_head(model.gpt_neox.final_layer_norm(block_out)), logits, atol=1e-5)
        for layer in range(lens.blocks):  # earlier layers: the final norm and unembedding, by hand
            by_hand = model.lm_head(model.gpt_neox.final_layer_norm(states[layer]))
            assert torch.equal(lens.logits(states[layer], layer), by_hand)


def test_zero_initialised_tuned_lens_is_the_logit_lens(tiny):
    model, _ = tiny
    lens = LogitLens(model)
    tuned = new_tuned_lens(lens.blocks, model.config.hidden_size)
    states, _ = states_and_logits(model, [3, 1, 4, 1, 5, 9, 2, 6])
    with torch.no_grad():
        for layer in range(lens.blocks + 1):
            assert torch.equal(lens.logits(tuned.translate(states[layer], layer), layer),
                               lens.logits(states[layer], layer))


def test_training_lowers_the_kl_and_a_saved_lens_loads_back(tiny, world_corpus, tmp_path):
    model, checkpoint = tiny
    _, corpus, _, _ = world_corpus
    lens = LogitLens(model)
    heldout, training = corpus_windows(corpus, 16, 256, 1024, seed=0)
    assert len(heldout) == 16 and len(training) == 64
    before = lens_metrics(lens, heldout)
    tuned, history = train_tuned_lens(lens, training, epochs=3, batch_rows=8, lr=1e-2, seed=0)
    after = lens_metrics(lens, heldout, tuned)
    assert len(history) == 3 and history[-1]["kl"][0] < history[0]["kl"][0]
    for row, base in zip(after["layers"][:-1], before["layers"][:-1]):
        assert row["logit_kl"] == pytest.approx(base["logit_kl"])
        assert row["tuned_kl"] < row["logit_kl"]  # held-out text, never trained on
    last = after["layers"][-1]
    assert last["logit_kl"] == pytest.approx(0, abs=1e-6) and last["tuned_kl"] == pytest.approx(0, abs=1e-6)
    assert last["logit_ce"] == pytest.approx(after["model_ce"])
    # the metrics recomputed plainly, one window at a time
    kl = ce = 0.0
    for window in heldout:
        states, logits = states_and_logits(model, window)
        p = torch.log_softmax(logits[0].double(), -1)
        with torch.no_grad():
            q = torch.log_softmax(model.lm_head(model.gpt_neox.final_layer_norm(
                states[0] + tuned.layers[0](states[0])))[0].double(), -1)
        kl += float((p.exp() * (p - q)).sum())
        ce += float(-q[torch.arange(len(window) - 1), torch.tensor(window[1:])].sum())
    assert after["layers"][0]["tuned_kl"] == pytest.approx(kl / (16 * 16), rel=1e-4)  # float32 sums against float64
    assert after["layers"][0]["tuned_ce"] == pytest.approx(ce / (16 * 15), rel=1e-5)

    save_tuned_lens(tuned, tmp_path / "lens", {"model": {"weights_sha256": checkpoint.weights_sha256}})
    loaded, meta = load_tuned_lens(tmp_path / "lens", checkpoint.weights_sha256)
    assert meta["blocks"] == lens.blocks
    for a, b in zip(tuned.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ModelError, match="was trained for other weights"):
        load_tuned_lens(tmp_path / "lens", "f" * 64)
    with pytest.raises(QueryError, match="holds no tuned lens"):
        load_tuned_lens(tmp_path)


def test_windows_are_disjoint_documents(world_corpus):
    _, corpus, _, _ = world_corpus
    heldout, training = corpus_windows(corpus, 8, 64, 200, seed=1, prefix=0)
    assert len(heldout) == 8 and len(training) == 25 and all(len(w) == 8 for w in heldout + training)
    assert heldout[0][0] == 0  # a document starts with the prefix
    with pytest.raises(QueryError, match="too few tokens"):
        corpus_windows(corpus, 8, 10**7, 0)


def test_models_without_a_final_norm_are_refused(tiny):
    model, _ = tiny

    class Bare(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = torch.nn.Module()
            self.transformer.h = model.gpt_neox.layers

        def forward(self, input_ids, output_hidden_states=False):
            return model(input_ids=input_ids, output_hidden_states=output_hidden_states)

    with pytest.raises(ModelError, match="cannot find the final norm") as caught:
        LogitLens(Bare())
    assert "\n" not in str(caught.value)


def test_measure_lenses_and_the_cli(tiny_run, world_corpus, tmp_path):
    from typer.testing import CliRunner

    from seethrough.cli.app import app

    root, corpus, _, docs = world_corpus
    text = docs[0]["text"]
    settings = LensSettings(train_tokens=512, heldout_tokens=128, seq_len=16, epochs=1)
    report = measure_lenses(tiny_run, corpus, [text], settings, threads=1)
    assert report.lens_source == "trained" and len(report.metrics["layers"]) == report.blocks + 1
    picture = report.pictures[0]
    assert set(picture) >= {"tokens", "layers", "logit", "tuned"} and len(picture["logit"]) == report.blocks + 1
    # the logit lens's last row is the model's own greedy next token at each position
    model = report.tuned  # noqa: F841
    from seethrough.model import load_model

    m = load_model(report.checkpoint, threads=1)
    _, logits = states_and_logits(m, picture["ids"])
    assert [c["id"] for c in picture["logit"][-1]] == logits[0].argmax(-1).tolist()

    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(app, ["lens", str(tiny_run), "--corpus", str(root / "corpus"), "--train-tokens", "256",
                                 "--heldout-tokens", "64", "--seq-len", "16", "--epochs", "1", "--text", text,
                                 "--out", str(out), "--json", "--threads", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["tuned_lens"] == "trained" and summary["layers"][0]["tuned_kl"] is not None
    assert {p.name for p in out.iterdir()} >= {"lens.json", "lens.png", "picture_0_logit.png", "picture_0_tuned.png",
                                               "tuned_lens"}
    again = runner.invoke(app, ["lens", str(tiny_run), "--corpus", str(root / "corpus"), "--heldout-tokens", "64",
                                "--seq-len", "16", "--lens", str(out / "tuned_lens"), "--json", "--threads", "1"])
    assert again.exit_code == 0, again.output
    reused = json.loads(again.stdout)
    assert reused["training"] is None and reused["tuned_lens"] == str(out / "tuned_lens")
    assert np.allclose([r["tuned_kl"] for r in reused["layers"]], [r["tuned_kl"] for r in summary["layers"]])

    def refused(*args):
        got = runner.invoke(app, ["lens", str(tiny_run), *args])
        assert isinstance(got.exception, (QueryError, ConfigError, ModelError)), got.output
        assert "\n" not in str(got.exception)
        return str(got.exception)

    assert "--train-tokens has no effect with no --corpus" in refused("--text", "a", "--train-tokens", "5")
    assert "--train-tokens has no effect with --lens" in refused("--corpus", str(root / "corpus"), "--lens",
                                                                 str(out / "tuned_lens"), "--train-tokens", "5")
    assert "give --corpus" in refused()
    assert "--epochs has no effect with --train-tokens 0" in refused("--corpus", str(root / "corpus"), "--train-tokens",
                                                                     "0", "--epochs", "2")
    assert "not both" in refused("--text", "a", "--file", str(tmp_path / "x"))
    assert "--seq-len must be at least 2" in refused("--corpus", str(root / "corpus"), "--seq-len", "1")
