"""Probes of hidden states: every method on synthetic features with a planted direction, against an
independent computation (an L-BFGS fit of logistic regression's own objective, scikit-learn's LDA, the
closed forms of the difference of means and VINC, a hand-worked CCS loss); the metrics against
scikit-learn and brute force; the hidden states against transformers' ``output_hidden_states``; the
model's own answers against log-probabilities summed by hand; and the one-line errors."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from seethrough.audit.probe import (METHODS, SideNormalizer, accuracy, auroc, bootstrap_intervals, ccs_loss,
                                    expected_calibration_error, fit_probe, parse_layers, parse_methods,
                                    parse_probe_records, read_probe_data, split_items)
from seethrough.audit.probe.methods import VINC_NEG_COV_WEIGHT, fit_ccs, probe_inputs
from seethrough.audit.probe.metrics import resample_indexes
from seethrough.errors import ConfigError, ModelError, QueryError


def planted_statements(n: int = 400, d: int = 8, separation: float = 1.5, seed: int = 0):
    """States x = noise (correlated, covariance mix' mix) + (2y - 1) separation u: the class means differ
    along u, the best linear discriminant is (mix' mix)^-1 u."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    mix = rng.standard_normal((d, d)) / np.sqrt(d) + np.eye(d)
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((n, d)) @ mix + np.outer(2 * y - 1, u) * separation
    return x[:, None, :], y, u, np.linalg.solve(mix.T @ mix, u)


def planted_pairs(n: int = 300, d: int = 8, separation: float = 2.0, seed: int = 1):
    """Two sides per item: the true side +separation u, the false one -separation u, each side shifted by a
    large offset of its own (the appended answer token) and a shared per-item base; label = index of the
    true side."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    y = rng.integers(0, 2, n)
    base = rng.standard_normal((n, d))
    offsets = rng.standard_normal((2, d)) * 10
    truth = np.stack([np.where(y == 0, 1.0, -1.0), np.where(y == 1, 1.0, -1.0)], axis=1)  # +1 on the true side
    x = base[:, None, :] + offsets[None] + truth[..., None] * separation * u + 0.5 * rng.standard_normal((n, 2, d))
    return x, y, u


def normalised(x: np.ndarray) -> np.ndarray:
    """Per side: mean removed, divided by one scale, the RMS of a centred coordinate (computed here by hand)."""
    out = np.empty_like(x)
    for side in range(x.shape[1]):
        centred = x[:, side] - x[:, side].mean(axis=0)
        out[:, side] = centred / np.sqrt((centred ** 2).mean())
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


# ---- normalisation ------------------------------------------------------------------------------------------


def test_side_normaliser_removes_each_sides_mean_and_scale():
    x, _, _ = planted_pairs()
    features = x[:, :, None, :]  # one layer
    normalizer = SideNormalizer.fit(features)
    z = normalizer.apply(features)[:, :, 0]
    assert np.allclose(z, normalised(x))
    assert np.allclose(z.mean(axis=0), 0, atol=1e-12)
    assert np.allclose(np.sqrt((z ** 2).mean(axis=(0, 2))), 1.0)
    # the side offsets (the answer tokens) are gone: the sides' means no longer tell them apart
    assert np.abs(z[:, 1].mean(axis=0) - z[:, 0].mean(axis=0)).max() < 1e-12
    # statistics come from the items fitted on and are applied unchanged to others
    half = SideNormalizer.fit(features[:100])
    assert np.allclose(half.apply(features[100:])[:, :, 0], (x[100:] - x[:100].mean(axis=0)) / half.scale[:, 0, None])


# ---- supervised methods -------------------------------------------------------------------------------------


def test_logreg_is_the_minimum_of_its_own_objective():
    """scikit-learn's fit equals an independent L-BFGS minimisation of the same L2-penalised log-loss."""
    from scipy.optimize import minimize

    x, y, _, best = planted_statements()
    c = 0.5
    probe = fit_probe("logreg", 3, x, y, logreg_c=c)
    f = x[:, 0]

    def objective(theta):
        w, b = theta[:-1], theta[-1]
        t = f @ w + b
        return 0.5 * w @ w + c * np.sum(np.logaddexp(0, t) - y * t)

    found = minimize(objective, np.zeros(f.shape[1] + 1), method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 1e-14})
    assert np.allclose(probe.weight, found.x[:-1], atol=1e-4) and abs(probe.bias - found.x[-1]) < 1e-4
    assert cosine(probe.weight, best) > 0.9
    expected = np.mean(((1 / (1 + np.exp(-(f @ found.x[:-1] + found.x[-1])))) > 0.5) == (y == 1))
    assert accuracy(y, probe.predictions(x)) == pytest.approx(expected)


def test_diffmean_is_the_difference_of_the_class_means():
    x, y, u, _ = planted_statements(seed=3)
    probe = fit_probe("diffmean", 0, x, y)
    f = x[:, 0]
    mu1, mu0 = f[y == 1].mean(axis=0), f[y == 0].mean(axis=0)
    assert np.allclose(probe.weight, mu1 - mu0)
    assert probe.bias == pytest.approx(-(mu1 - mu0) @ (mu1 + mu0) / 2)
    # threshold halfway between the means: a point on the side of mu1 is called 1
    predicted = (f - (mu1 + mu0) / 2) @ (mu1 - mu0) > 0
    assert accuracy(y, probe.predictions(x)) == pytest.approx(np.mean(predicted == (y == 1)))
    assert probe.slope > 0 and cosine(probe.weight, u) > 0.9


def test_lda_against_scikit_learn_and_the_closed_form():
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    x, y, _, best = planted_statements(n=120, d=30, seed=5)  # width close to the items: shrinkage matters
    probe = fit_probe("lda", 1, x, y)
    f = x[:, 0]
    a = probe.details["shrinkage"]
    assert 0 < a < 1
    # the closed form: the class-weighted within-class covariance, shrunk toward tr/d I
    priors = np.array([np.mean(y == 0), np.mean(y == 1)])
    means = [f[y == k].mean(axis=0) for k in (0, 1)]
    pooled = sum(p * np.cov(f[y == k].T, bias=True) for k, p in enumerate(priors))
    shrunk = (1 - a) * pooled + a * np.trace(pooled) / f.shape[1] * np.eye(f.shape[1])
    inverse = np.linalg.inv(shrunk)
    w = inverse @ (means[1] - means[0])
    b = -0.5 * (means[1] @ inverse @ means[1] - means[0] @ inverse @ means[0]) + np.log(priors[1] / priors[0])
    assert np.allclose(probe.weight, w, atol=1e-8) and probe.bias == pytest.approx(b, abs=1e-8)
    reference = LinearDiscriminantAnalysis(solver="eigen", shrinkage=a).fit(f, y)  # another solver
    assert np.allclose(probe.weight, reference.coef_[0], atol=1e-6)
    assert np.allclose(probe.probabilities(x), reference.predict_proba(f)[:, 1], atol=1e-8)
    assert accuracy(y, probe.predictions(x)) == pytest.approx(reference.score(f, y))
    x, y, _, best = planted_statements()  # more items than width: the planted discriminant is found
    assert cosine(fit_probe("lda", 1, x, y).weight, best) > 0.9


# ---- unsupervised methods -----------------------------------------------------------------------------------


def test_ccs_loss_by_hand():
    # item 1: p0 = 0.3, p1 = 0.8: consistency (0.8 - 0.7)^2 = 0.01, confidence min(0.3, 0.8)^2 = 0.09
    # item 2: p0 = p1 = 0.5: (0.5 - 0.5)^2 + 0.25; mean (0.10 + 0.25) / 2
    assert ccs_loss(np.array([0.3, 0.5]), np.array([0.8, 0.5])) == pytest.approx(0.175)
    import torch

    assert float(ccs_loss(torch.tensor([0.3, 0.5]), torch.tensor([0.8, 0.5]))) == pytest.approx(0.175)


def test_ccs_keeps_the_lowest_loss_and_finds_the_planted_direction():
    x, y, u = planted_pairs()
    z = normalised(x)
    probe = fit_probe("ccs", 2, z, y, seed=0, ccs_restarts=6)
    losses = probe.details["losses"]
    assert len(losses) == 6 and probe.loss == min(losses)
    # the loss recomputed from the kept start's weights (before the sign was set) is the reported one
    from scipy.special import expit as sigmoid
    sign = -1 if probe.details["flipped"] else 1
    w, b = sign * probe.weight, sign * probe.bias
    assert ccs_loss(sigmoid(z[:, 0] @ w + b), sigmoid(z[:, 1] @ w + b)) == pytest.approx(probe.loss, abs=1e-9)
    # the item's probability is (p(x1) + 1 - p(x0)) / 2 with the oriented weights
    p0, p1 = sigmoid(z[:, 0] @ probe.weight + probe.bias), sigmoid(z[:, 1] @ probe.weight + probe.bias)
    assert np.allclose(probe.probabilities(z), (p1 + 1 - p0) / 2)
    assert abs(cosine(probe.weight, u)) > 0.9
    assert accuracy(y, probe.predictions(z)) > 0.9 and auroc(y, probe.scores(z)) > 0.9
    # one start from the same seed is the first of the six
    single = fit_ccs(2, z, restarts=1, seed=0)
    assert single.details["losses"][0] == pytest.approx(losses[0])


def test_vinc_is_the_top_eigenvector_of_its_closed_form():
    x, y, u = planted_pairs(seed=4)
    z = normalised(x)
    probe = fit_probe("vinc", 0, z, y)
    # elk's matrix with one prompt per item and var_weight 0: -neg_cov_weight x the symmetrised cross-covariance
    x0, x1 = z[:, 0] - z[:, 0].mean(axis=0), z[:, 1] - z[:, 1].mean(axis=0)
    cross = sum(np.outer(a, b) for a, b in zip(x0, x1)) / len(z)
    matrix = -VINC_NEG_COV_WEIGHT * (cross + cross.T) / 2
    values, vectors = np.linalg.eigh(matrix)
    top = vectors[:, np.argmax(values)]
    assert abs(cosine(probe.weight, top)) == pytest.approx(1.0, abs=1e-10)
    assert probe.loss == pytest.approx(values.max())
    # the sign from the labels: the score w.(z1 - z0) ranks the true second choices higher
    scores = (z[:, 1] - z[:, 0]) @ probe.weight
    assert np.allclose(probe.scores(z), scores)
    assert auroc(y, scores) > 0.9 and abs(cosine(probe.weight, u)) > 0.9
    assert accuracy(y, probe.predictions(z)) == pytest.approx(np.mean((scores > 0) == (y == 1)))


def test_random_direction_is_a_seeded_unit_vector_with_its_sign_from_the_labels():
    x, y, _ = planted_pairs(seed=6)
    z = normalised(x)
    a, b = fit_probe("random", 3, z, y, seed=1), fit_probe("random", 3, z, y, seed=1)
    assert np.array_equal(a.weight, b.weight) and np.linalg.norm(a.weight) == pytest.approx(1.0)
    assert not np.array_equal(a.weight, fit_probe("random", 4, z, y, seed=1).weight)
    raw = np.random.default_rng([1, 3]).standard_normal(z.shape[-1])
    raw /= np.linalg.norm(raw)
    sign = 1 if auroc(y, probe_inputs(z) @ raw) >= 0.5 else -1
    assert np.allclose(a.weight, sign * raw) and auroc(y, a.scores(z)) >= 0.5
    # accuracy counts the sign of the score, whatever slope calibration fitted (even a flat 0)
    a.slope = 0.0
    assert np.allclose(a.probabilities(z), 0.5)
    assert accuracy(y, a.predictions(z)) == pytest.approx(np.mean((probe_inputs(z) @ a.weight > 0) == (y == 1)))


def test_unsupervised_methods_use_the_labels_for_the_sign_only():
    x, y, _ = planted_pairs(seed=8)
    z = normalised(x)
    for method in ("ccs", "vinc", "random"):
        fitted = fit_probe(method, 0, z, y, seed=2, ccs_restarts=3)
        against = fit_probe(method, 0, z, 1 - y, seed=2, ccs_restarts=3)
        assert np.allclose(fitted.weight, -against.weight), method  # other labels: the same direction turned round


def test_method_lists_and_statements():
    assert parse_methods("all", "pairs") == list(METHODS)
    assert parse_methods(None, "statements") == ["logreg", "diffmean", "lda", "random"]
    assert parse_methods("lda,logreg,lda", "statements") == ["lda", "logreg"]
    with pytest.raises(ConfigError, match="ccs needs contrast pairs"):
        parse_methods("logreg,ccs", "statements")
    with pytest.raises(ConfigError, match="unknown method 'svm'"):
        parse_methods("svm", "pairs")


# ---- metrics ------------------------------------------------------------------------------------------------


def test_auroc_accuracy_and_ece_against_references():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    scores = np.round(rng.standard_normal(200) + y, 1)  # rounded: ties
    assert auroc(y, scores) == pytest.approx(roc_auc_score(y, scores))
    assert np.isnan(auroc(np.ones(5, dtype=int), np.arange(5.0)))
    assert accuracy(np.array([1, 0, 1, 0]), np.array([1, 0, 0, 0])) == 0.75
    # ECE by hand: bins [0.1, 0.2) holds 0.1 (label 0) and 0.15 (label 1): gap |0.5 - 0.125| x 2/5;
    # bin [0.9, 1] holds 0.9, 0.95, 1.0 (labels 1, 1, 0): gap |2/3 - 0.95| x 3/5
    labels, probabilities = np.array([0, 1, 1, 1, 0]), np.array([0.1, 0.15, 0.9, 0.95, 1.0])
    assert expected_calibration_error(labels, probabilities) == pytest.approx(0.375 * 0.4 + (0.95 - 2 / 3) * 0.6)


def test_bootstrap_intervals_against_a_plain_loop():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 60)
    scores = rng.standard_normal(60) + y
    predicted = (scores > 0.5).astype(int)
    resamples = resample_indexes(60, seed=3, resamples=300)
    got = bootstrap_intervals(y, scores, predicted, resamples)
    areas = [roc_auc_score(y[r], scores[r]) for r in resamples if 0 < y[r].sum() < len(r)]
    rights = [np.mean(predicted[r] == y[r]) for r in resamples]
    assert np.allclose(got["auroc_ci"], np.percentile(areas, [2.5, 97.5]))
    assert np.allclose(got["accuracy_ci"], np.percentile(rights, [2.5, 97.5]))
    assert got["auroc_ci"][0] < auroc(y, scores) < got["auroc_ci"][1]


# ---- the data file and the split ----------------------------------------------------------------------------


def write_lines(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_data_file_errors(tmp_path):
    cases = [
        ([{"text": "a", "label": 1}, {"text": "b", "label": 1}], "are all 1; a probe needs items of both labels"),
        ([{"question": "q", "choices": ["a", "b", "c"], "label": 0}], ":1: a contrast pair has exactly two choices"),
        ([{"text": "a", "label": 1}, {"question": "q", "choices": ["a", "b"], "label": 0}], ":2: a pair among"),
        ([{"text": "a", "label": 2}], '"label" must be 0 or 1'),
        ([{"text": "a", "label": True}], '"label" must be 0 or 1'),
        (["", "{not json"], ":2: not valid JSON"),
        ([{"question": "q", "choices": ["a", "a"], "label": 0}], "the same text"),
    ]
    for records, message in cases:
        with pytest.raises(QueryError, match=message) as caught:
            read_probe_data(write_lines(tmp_path / "d.jsonl", records))
        assert "\n" not in str(caught.value)
    with pytest.raises(QueryError, match="cannot read --data"):
        read_probe_data(tmp_path / "missing.jsonl")


def test_split_by_groups_and_held_out():
    records = [{"text": f"t{i}", "label": i % 2, "group": "a" if i < 40 else "b"} for i in range(60)]
    data = parse_probe_records(records)
    train, test = split_items(data, test_share=0.25, seed=0)
    assert len(set(train) & set(test)) == 0 and len(train) + len(test) == 60
    assert sum(data.labels[test] == 1) == round(0.25 * 30) and sum(data.labels[test] == 0) == round(0.25 * 30)
    train, test = split_items(data, "a", "b")
    assert set(train) == set(range(40)) and set(test) == set(range(40, 60))
    train, test = split_items(data, test_group="b")
    assert set(train) == set(range(40)) and set(test) == set(range(40, 60))
    train, test = split_items(data, "a")
    assert set(train) | set(test) <= set(range(40)) and not set(train) & set(test)
    with pytest.raises(QueryError, match="--test-group 'c': no item has that group; the groups .* are a, b"):
        split_items(data, "a", "c")
    lopsided = parse_probe_records([{"text": "x", "label": 1, "group": "a"}, {"text": "y", "label": 0, "group": "b"},
                                    {"text": "z", "label": 1, "group": "b"}])
    with pytest.raises(QueryError, match="the labels of the items fitted on are all 1"):
        split_items(lopsided, "a", "b")


# ---- on a model ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tiny_run):
    pytest.importorskip("torch")
    from seethrough.model import load_model, resolve_target

    checkpoint = resolve_target(tiny_run).last
    from transformers import AutoTokenizer

    return load_model(checkpoint, threads=1), AutoTokenizer.from_pretrained(str(checkpoint.path)), checkpoint


def world_pairs(world, count=40):
    people = [p for p in world.truth["people"] if p["group"] != "C"][:count]
    cities = world.truth["cities"]
    out = []
    for k, p in enumerate(people):
        wrong = cities[(cities.index(p["city"]) + 1) % len(cities)]
        choices = [wrong, p["city"]] if k % 2 else [p["city"], wrong]
        out.append({"question": f"{p['name']} was born in", "choices": choices, "label": k % 2,
                    "group": "a" if k < count // 2 else "b"})
    return out


def test_hidden_states_equal_transformers_output_hidden_states(tiny_model, world_corpus):
    import torch

    from seethrough.audit.probe import extract_features, hidden_layers

    model, tokenizer, _ = tiny_model
    data = parse_probe_records(world_pairs(world_corpus[2], 12) + [])
    n = hidden_layers(model)
    features = extract_features(model, tokenizer, data, list(range(n + 1)), batch_size=5)
    assert features.shape == (12, 2, n + 1, model.config.hidden_size)
    for i, item in enumerate(data.items):
        for side, text in enumerate(item.sides(" ")):
            ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
            with torch.no_grad():
                states = model(input_ids=ids, output_hidden_states=True).hidden_states
            for layer in range(n + 1):
                assert torch.allclose(torch.from_numpy(features[i, side, layer]), states[layer][0, -1], atol=1e-6)


def test_the_models_own_answers_are_its_likelier_choice(tiny_model, world_corpus):
    import torch

    from seethrough.audit.probe import Prober

    model, tokenizer, checkpoint = tiny_model
    data = parse_probe_records(world_pairs(world_corpus[2], 16))
    answers = Prober(checkpoint, threads=1).answers(data)
    for item, answer in zip(data.items, answers):
        context = tokenizer(item.question, add_special_tokens=False)["input_ids"]
        totals = []
        for choice in item.choices:
            whole = tokenizer(f"{item.question} {choice}", add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=torch.tensor([whole])).logits[0].double(), -1)
            totals.append(sum(float(logp[t - 1, whole[t]]) for t in range(len(context), len(whole))))
        assert answer == int(totals[1] > totals[0])


def test_layers_outside_the_model_and_models_without_hidden_states(tiny_model):
    from seethrough.audit.probe import hidden_layers

    model, _, _ = tiny_model
    n = hidden_layers(model)
    assert parse_layers("all", n) == list(range(n + 1)) and parse_layers("0,2-2", n) == [0, 2]
    with pytest.raises(ModelError, match=f"layer {n + 1} is outside this model's 0..{n}"):
        parse_layers(f"1,{n + 1}", n)
    with pytest.raises(ConfigError, match="use all, or layer numbers"):
        parse_layers("first", n)

    class Hidden(type(model)):
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out.hidden_states = None
            return out

    blind = Hidden(model.config)
    with pytest.raises(ModelError, match="does not expose its hidden states") as caught:
        hidden_layers(blind.eval())
    assert "\n" not in str(caught.value)


def test_probe_model_end_to_end_and_saved_directions(tiny_run, world_corpus, tmp_path):
    from seethrough.audit.probe import ProbeSettings, load_directions, probe_model, write_probe
    from seethrough.model import resolve_target

    data = parse_probe_records(world_pairs(world_corpus[2], 40), "pairs")
    report = probe_model(tiny_run, data, ProbeSettings(train_group="a", test_group="b", ccs_restarts=2), threads=1)
    summary = write_probe(report, tmp_path / "out")
    assert summary["train"]["items"] == 20 and summary["test"]["items"] == 20
    assert {(r["layer"], r["method"]) for r in summary["results"]} == {(l, m) for l in range(3) for m in METHODS}
    expected = np.mean(report.answers[report.test] == data.labels[report.test])
    assert summary["output_accuracy"] == pytest.approx(expected)
    assert (tmp_path / "out/probe.png").stat().st_size > 0
    on_disk = json.loads((tmp_path / "out/probe.json").read_text())
    assert on_disk["results"] == json.loads(json.dumps(summary["results"]))
    # the saved probe scores the test items as the report did
    saved = load_directions(tmp_path / "out")
    saved.check_model(resolve_target(tiny_run).last)
    from seethrough.audit.probe import Prober

    raw = Prober(report.checkpoint, threads=1).features(data, [2])
    probe, normalizer = saved.probe(2, "logreg")
    row = next(r for r in summary["results"] if r["layer"] == 2 and r["method"] == "logreg")
    z = normalizer.apply(raw)[report.test][:, :, 0]
    assert auroc(data.labels[report.test], probe.scores(z)) == pytest.approx(row["auroc"], abs=1e-6)
    assert np.linalg.norm(saved.direction(2, "vinc")) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ModelError, match="the directions were fitted on model"):
        saved.check_model(SimpleNamespace(path="other", weights_sha256="0" * 64))


def test_probe_cli(tiny_run, world_corpus, tmp_path):
    from typer.testing import CliRunner

    from seethrough.cli.app import app

    data = write_lines(tmp_path / "pairs.jsonl", world_pairs(world_corpus[2], 30))
    runner = CliRunner()
    result = runner.invoke(app, ["probe", str(tiny_run), "--data", str(data), "--layers", "1,2", "--methods",
                                 "logreg,vinc", "--json", "--threads", "1"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout)
    assert set(line) >= {"items", "train", "test", "output_accuracy", "results"}
    assert line["items"] == 30 and line["train"]["items"] + line["test"]["items"] == 30
    assert [(r["layer"], r["method"]) for r in line["results"]] == [(1, "logreg"), (1, "vinc"), (2, "logreg"),
                                                                   (2, "vinc")]
    assert all(set(r) >= {"layer", "method", "accuracy", "auroc", "auroc_ci", "ece"} for r in line["results"])

    def refused(*args):
        got = runner.invoke(app, ["probe", str(tiny_run), "--data", str(data), *args])
        assert isinstance(got.exception, (QueryError, ConfigError, ModelError)), got.output
        assert "\n" not in str(got.exception)
        return str(got.exception)

    assert "layer 9 is outside" in refused("--layers", "9")
    assert "--test-share has no effect" in refused("--train-group", "a", "--test-group", "b", "--test-share", "0.2")
    assert "no item has that group" in refused("--train-group", "x")
    assert "--ccs-restarts has no effect with --methods without ccs" in refused("--methods", "lda", "--ccs-restarts", "3")
    assert "--logreg-c has no effect with --methods without logreg" in refused("--methods", "vinc", "--logreg-c", "2")
    assert not (tmp_path / "o").exists()
    one_class = write_lines(tmp_path / "one.jsonl", [{"text": "a", "label": 0}, {"text": "b", "label": 0}])
    got = runner.invoke(app, ["probe", str(tiny_run), "--data", str(one_class), "--out", str(tmp_path / "o")])
    assert isinstance(got.exception, QueryError) and "are all 0" in str(got.exception)
    statements = write_lines(tmp_path / "s.jsonl", [{"text": "a b", "label": 0}, {"text": "b a", "label": 1}])
    got = runner.invoke(app, ["probe", str(tiny_run), "--data", str(statements), "--delimiter", "-"])
    assert "--delimiter has no effect with statements" in str(got.exception)
    assert not (tmp_path / "o").exists()
