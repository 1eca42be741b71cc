"""Erasing and steering at deployment, against independent computations: concept-erasure's own
``LeaceEraser`` fitted on transformers' ``hidden_states``; the eraser's safetensors applied by hand with
the issue's formula in plain torch hooks (no seethrough code); the steering vector as a mean difference
of transformers' hidden states; logits compared bit for bit with the unhooked model; a fresh
scikit-learn probe against the majority rate and its Wilson interval; and the one-line errors, with
the model's files unchanged."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("concept_erasure")

from seethrough.errors import ConfigError, ModelError, QueryError  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    torch.set_num_threads(1)


def folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            digest.update(p.name.encode() + p.read_bytes())
    return digest.hexdigest()


def city_statements(world, people: int = 24):
    """``NAME was born in CITY`` for many names and cities; the concept is which half the city is in."""
    cities = world.truth["cities"][:12]
    names = [p["name"] for p in world.truth["people"][:people]]
    return [{"text": f"{name} was born in {city}", "label": k % 2}
            for i, name in enumerate(names) for k, city in enumerate(cities) if (i + k) % 3 != 0]


@pytest.fixture(scope="module")
def tiny(tiny_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from seethrough.model import resolve_target

    checkpoint = resolve_target(tiny_run).last
    plain = AutoModelForCausalLM.from_pretrained(str(checkpoint.path)).eval()  # transformers only, no seethrough
    return checkpoint, plain, AutoTokenizer.from_pretrained(str(checkpoint.path))


@pytest.fixture(scope="module")
def fitted(tiny, world_corpus, tmp_path_factory):
    from seethrough.audit.control import EraseSettings, erase_model, write_eraser
    from seethrough.audit.probe import parse_probe_records
    from seethrough.corpus import open_token_corpus

    checkpoint, _, _ = tiny
    root, _, world, _ = world_corpus
    data = parse_probe_records(city_statements(world), "cities")
    report = erase_model(checkpoint, data, EraseSettings(layers="1,2", heldout_tokens=256, seq_len=16), threads=1,
                         corpus=open_token_corpus(root / "corpus"))
    out = tmp_path_factory.mktemp("eraser") / "eraser"
    summary = write_eraser(report, out)
    return report, summary, out, data


def hidden_last(model, tokenizer, texts, hooks=()):
    """transformers' hidden_states at each text's last token (layers 0..n), with plain torch hooks on."""
    handles = [model.gpt_neox.layers[layer - 1].register_forward_hook(fn, prepend=True) for layer, fn in hooks]
    try:
        out = []
        with torch.no_grad():
            for text in texts:
                ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
                states = model(input_ids=ids, output_hidden_states=True).hidden_states
                out.append(torch.stack([s[0, -1] for s in states]))
        return torch.stack(out)
    finally:
        for h in handles:
            h.remove()


def block_outputs(model, tokenizer, texts, layer, hooks=()):
    """The output of block ``layer`` at each text's last token, read with a plain torch hook."""
    handles = [model.gpt_neox.layers[l - 1].register_forward_hook(fn, prepend=True) for l, fn in hooks]
    seen = []
    catch = model.gpt_neox.layers[layer - 1].register_forward_hook(lambda m, i, o: seen.append(o[0, -1].clone()))
    try:
        with torch.no_grad():
            for text in texts:
                model(input_ids=torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]]))
        return torch.stack(seen)
    finally:
        catch.remove()
        for h in handles:
            h.remove()


def by_hand(file: Path):
    """A forward hook applying the issue's formula with the tensors of ``layer-L.safetensors`` (plain torch)."""
    from safetensors.torch import load_file

    t = load_file(str(file))

    def hook(_module, _inputs, x):
        return x - ((x - t["bias"]) @ t["proj_right"].T) @ t["proj_left"].T

    return hook


# ---- erasure -----------------------------------------------------------------------------------------------


def test_erased_states_equal_concept_erasure_applied_directly(tiny, fitted):
    from concept_erasure import LeaceEraser

    from seethrough.model import load_model

    checkpoint, plain, tokenizer = tiny
    report, _, out, data = fitted
    texts = [item.text for item in data.items]
    labels = torch.tensor(data.labels, dtype=torch.float64)
    train = torch.tensor(_train_indexes(report, data))
    # layer 1 (below the last block, so transformers' hidden_states[1] is the block's output)
    x1 = hidden_last(plain, tokenizer, texts)[:, 1].double()
    direct = LeaceEraser.fit(x1[train], labels[train].reshape(-1, 1))
    erased_model = load_model(replace(checkpoint, intervention=_load(out)), threads=1)
    via_hooks = hidden_last(erased_model, tokenizer, texts)[:, 1].double()
    assert torch.allclose(via_hooks, direct(x1), atol=1e-4)
    assert not torch.allclose(via_hooks, x1, atol=1e-2)  # something was erased
    # layer 2 (the last block) is fitted on the states that arrive with layer 1 already erased
    x2 = block_outputs(plain, tokenizer, texts, 2, hooks=[(1, by_hand(out / "layer-1.safetensors"))]).double()
    direct2 = LeaceEraser.fit(x2[train], labels[train].reshape(-1, 1))
    got2 = block_outputs(erased_model, tokenizer, texts, 2).double()
    assert torch.allclose(got2, direct2(x2), atol=1e-4)


def _train_indexes(report, data):
    from seethrough.audit.probe import split_items

    train, _ = split_items(data, test_share=report.settings.test_share, seed=report.settings.seed)
    return train


def _load(folder, multiplier=None):
    from seethrough.model import load_intervention

    return load_intervention(folder, multiplier)


def test_safetensors_applied_by_hand_give_the_hooked_models_states_and_logits(tiny, fitted):
    from seethrough.model import load_model

    checkpoint, plain, tokenizer = tiny
    _, summary, out, data = fitted
    assert sorted(p.name for p in out.iterdir()) == ["eraser.json", "layer-1.safetensors", "layer-2.safetensors",
                                                    "summary.json"]
    texts = [item.text for item in data.items[:20]]
    hooks = [(1, by_hand(out / "layer-1.safetensors")), (2, by_hand(out / "layer-2.safetensors"))]
    erased_model = load_model(replace(checkpoint, intervention=_load(out)), threads=1)
    for text in texts:
        ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
        # prepended: transformers 5 records hidden_states with hooks of its own, which must see the edit
        handles = [plain.gpt_neox.layers[l - 1].register_forward_hook(fn, prepend=True) for l, fn in hooks]
        try:
            with torch.no_grad():
                mine = plain(input_ids=ids, output_hidden_states=True)
        finally:
            for h in handles:
                h.remove()
        with torch.no_grad():
            theirs = erased_model(input_ids=ids, output_hidden_states=True)
        assert torch.allclose(mine.logits, theirs.logits, atol=1e-5)
        assert torch.allclose(mine.hidden_states[1], theirs.hidden_states[1], atol=1e-5)
    meta = json.loads((out / "eraser.json").read_text())
    assert meta["layers"] == [1, 2] and meta["method"] == "leace"
    assert meta["model"]["weights_sha256"] == checkpoint.weights_sha256
    assert meta["data"]["items"] == len(data.items) and meta["data"]["fit_items"] + meta["data"]["heldout_items"] == \
        len(data.items)
    assert meta["data"]["items_sha256"] == hashlib.sha256(json.dumps([[i.text, i.label] for i in data.items],
                                                                     sort_keys=True, separators=(",", ":"),
                                                                     ensure_ascii=False).encode()).hexdigest()
    assert summary["sha256"] == _load(out).sha256


def test_a_fresh_probe_after_erasure_is_at_the_majority_rate(tiny, fitted):
    from sklearn.linear_model import LogisticRegression

    from seethrough.audit.intervals import wilson_interval

    checkpoint, plain, tokenizer = tiny
    report, summary, out, data = fitted
    train = _train_indexes(report, data)
    test = np.setdiff1d(np.arange(len(data.items)), train)
    labels = data.labels
    texts = [item.text for item in data.items]
    hooks = [(1, by_hand(out / "layer-1.safetensors")), (2, by_hand(out / "layer-2.safetensors"))]
    for layer in (1, 2):
        before = block_outputs(plain, tokenizer, texts, layer).double().numpy()
        after = block_outputs(plain, tokenizer, texts, layer, hooks=hooks).double().numpy()
        majority = int(np.bincount(labels[train]).argmax())
        rate = float(np.mean(labels[test] == majority))
        scores = {}
        for name, x in (("before", before), ("after", after)):
            mean, std = x[train].mean(0), x[train].std(0)
            std[std == 0] = 1
            probe = LogisticRegression(max_iter=2000).fit((x[train] - mean) / std, labels[train])
            right = int((probe.predict((x[test] - mean) / std) == labels[test]).sum())
            scores[name] = (right / len(test), wilson_interval(right, len(test)))
        row = next(r for r in summary["probes"] if r["layer"] == layer)
        assert row["before"]["accuracy"] == pytest.approx(scores["before"][0], abs=0.03)
        assert row["after"]["accuracy"] == pytest.approx(scores["after"][0], abs=0.03)
        assert row["after"]["majority_rate"] == pytest.approx(rate)
        # there was a concept to erase: the probe beat the majority rate before
        assert scores["before"][1][0] > rate
        low, high = scores["after"][1]
        assert low <= rate <= high and row["after"]["at_majority_rate"]
    assert summary["cross_entropy"]["tokens"] > 0 and summary["cross_entropy"]["before"] > 0
    assert all(e["mean_edit_norm"] > 0 for e in summary["edits"])


def test_hooks_come_off_after_the_block_even_on_error(tiny, fitted):
    checkpoint, plain, tokenizer = tiny
    eraser = _load(fitted[2])
    ids = torch.tensor([tokenizer("x was born in", add_special_tokens=False)["input_ids"] or [1, 2, 3]])
    hooks_before = [dict(layer._forward_hooks) for layer in plain.gpt_neox.layers]  # transformers keeps its own
    with torch.no_grad():
        reference = plain(input_ids=ids).logits.clone()
        with eraser.installed(plain):
            during = plain(input_ids=ids).logits.clone()
        assert not torch.equal(during, reference)
        assert torch.equal(plain(input_ids=ids).logits, reference)
        with pytest.raises(RuntimeError, match="inside"):
            with eraser.installed(plain):
                raise RuntimeError("inside")
        assert torch.equal(plain(input_ids=ids).logits, reference)
    assert [dict(layer._forward_hooks) for layer in plain.gpt_neox.layers] == hooks_before


def test_an_eraser_of_another_model_is_refused_and_no_model_file_changes(tiny_run, fitted):
    from seethrough.model import load_model, resolve_target

    before = folder_digest(tiny_run)
    other = resolve_target(tiny_run, "0").last
    with pytest.raises(ModelError, match="was fitted on model .* not .*; fit one for this model with seethrough "
                                         "erase") as caught:
        load_model(replace(other, intervention=_load(fitted[2])), threads=1)
    assert "\n" not in str(caught.value)
    with pytest.raises(ModelError, match="fit one for this model"):  # at once, before a checkpoint runs
        resolve_target(tiny_run, "all", intervention=_load(fitted[2]))
    target = resolve_target(tiny_run, "last", intervention=_load(fitted[2]))
    assert all(c.intervention.sha256 == _load(fitted[2]).sha256 for c in target.checkpoints)
    assert folder_digest(tiny_run) == before


def test_erase_bad_input(tiny, world_corpus, tmp_path):
    from seethrough.audit.control import EraseSettings, erase_model
    from seethrough.audit.probe import parse_probe_records

    checkpoint, _, _ = tiny
    data = parse_probe_records(city_statements(world_corpus[2], 6), "cities")
    with pytest.raises(ModelError, match="layer 3 is outside this model's blocks 1..2; use 1..2"):
        erase_model(checkpoint, data, EraseSettings(layers="1,3"), threads=1)
    with pytest.raises(ModelError, match="layer 0 is the embeddings"):
        erase_model(checkpoint, data, EraseSettings(layers="0,1"), threads=1)
    with pytest.raises(ConfigError, match="--method 'lda': use leace or orth"):
        EraseSettings(method="lda")
    with pytest.raises(ConfigError, match="not a folder written by|holds neither"):
        _load(tmp_path)


def test_an_eraser_whose_files_changed_is_refused(tiny, fitted, tmp_path):
    import shutil

    from seethrough.model import load_model

    checkpoint, _, _ = tiny
    copy = tmp_path / "copy"
    shutil.copytree(fitted[2], copy)
    eraser = _load(copy)
    meta = json.loads((copy / "eraser.json").read_text())
    meta["method"] = "orth"
    (copy / "eraser.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="changed since it was loaded"):
        load_model(replace(checkpoint, intervention=eraser), threads=1)


def test_orth_is_concept_erasures_orthogonal_projection(tiny, world_corpus):
    from concept_erasure import LeaceEraser

    from seethrough.audit.control import fit_erasers
    from seethrough.audit.probe import parse_probe_records
    from seethrough.model import load_model

    checkpoint, plain, tokenizer = tiny
    data = parse_probe_records(city_statements(world_corpus[2], 10), "cities")
    rows = [tokenizer(i.text, add_special_tokens=False)["input_ids"] for i in data.items]
    model = load_model(checkpoint, threads=1)
    tensors = fit_erasers(model, rows, data.labels, [1], "orth", checkpoint.weights_sha256)
    x = hidden_last(plain, tokenizer, [i.text for i in data.items])[:, 1].double()
    direct = LeaceEraser.fit(x, torch.tensor(data.labels, dtype=torch.float64).reshape(-1, 1), method="orth")
    assert np.allclose(tensors[1]["proj_left"], direct.proj_left.float().numpy(), atol=1e-5)
    assert np.allclose(tensors[1]["bias"], direct.bias.float().numpy(), atol=1e-5)


# ---- steering -----------------------------------------------------------------------------------------------


def city_pairs(world, count: int = 30):
    people = world.truth["people"][:count]
    cities = world.truth["cities"]
    return [{"prompt": f"{p['name']} was born in", "matching": p["city"],
             "not_matching": cities[(cities.index(p["city"]) + 1) % len(cities)]} for p in people]


@pytest.fixture(scope="module")
def steered(tiny, world_corpus, tmp_path_factory):
    from seethrough.audit.control import SteerSettings, parse_pairs, steer_model, write_vector
    from seethrough.corpus import open_token_corpus

    checkpoint, _, _ = tiny
    root, _, world, _ = world_corpus
    pairs = parse_pairs(city_pairs(world), "pairs")
    report = steer_model(checkpoint, pairs, SteerSettings(layers="1,2", multipliers="-4,0,4", heldout_tokens=128,
                                                          seq_len=16), corpus=open_token_corpus(root / "corpus"),
                         threads=1)
    out = tmp_path_factory.mktemp("vector") / "vector"
    return report, write_vector(report, out), out, pairs


def test_the_steering_vector_is_the_mean_difference_computed_directly(tiny, steered):
    from seethrough.audit.control.steer import _split

    checkpoint, plain, tokenizer = tiny
    report, summary, out, pairs = steered
    fit, _ = _split(len(pairs), report.settings.test_share, report.settings.seed)
    chosen = [pairs[i] for i in fit]
    a = hidden_last(plain, tokenizer, [f"{p.prompt} {p.matching}" for p in chosen])
    b = hidden_last(plain, tokenizer, [f"{p.prompt} {p.not_matching}" for p in chosen])
    expected = (a - b).double().mean(0)
    from safetensors.torch import load_file

    assert torch.allclose(load_file(str(out / "layer-1.safetensors"))["vector"].double(), expected[1], atol=1e-5)
    # the last block: its output before the final norm, read by hand
    a2 = block_outputs(plain, tokenizer, [f"{p.prompt} {p.matching}" for p in chosen], 2)
    b2 = block_outputs(plain, tokenizer, [f"{p.prompt} {p.not_matching}" for p in chosen], 2)
    assert torch.allclose(load_file(str(out / "layer-2.safetensors"))["vector"].double(), (a2 - b2).double().mean(0),
                          atol=1e-5)
    assert [(r["layer"], r["multiplier"]) for r in summary["curve"]] == [(l, m) for l in (1, 2) for m in (-4, 0, 4)]


def test_the_curve_is_the_matching_probability_steered_by_hand(tiny, steered):
    from safetensors.torch import load_file

    from seethrough.audit.control.steer import _split

    checkpoint, plain, tokenizer = tiny
    report, summary, out, pairs = steered
    _, test = _split(len(pairs), report.settings.test_share, report.settings.seed)
    vector = load_file(str(out / "layer-1.safetensors"))["vector"]
    for m in (-4.0, 0.0, 4.0):
        probabilities = []
        for i in test:
            p = pairs[i]
            prompt = tokenizer(p.prompt, add_special_tokens=False)["input_ids"]
            logs = []
            for answer in (p.matching, p.not_matching):
                ids = prompt + tokenizer(" " + answer, add_special_tokens=False)["input_ids"]

                def hook(_m, _i, x, start=len(prompt) - 1):
                    x = x.clone()
                    x[:, start:] += m * vector
                    return x

                h = plain.gpt_neox.layers[0].register_forward_hook(hook)
                try:
                    with torch.no_grad():
                        logp = torch.log_softmax(plain(input_ids=torch.tensor([ids])).logits[0].double(), -1)
                finally:
                    h.remove()
                logs.append(sum(float(logp[t - 1, ids[t]]) for t in range(len(prompt), len(ids))))
            probabilities.append(1 / (1 + np.exp(logs[1] - logs[0])))
        row = next(r for r in summary["curve"] if r["layer"] == 1 and r["multiplier"] == m)
        assert row["p_matching"] == pytest.approx(float(np.mean(probabilities)), abs=1e-6)
        low, high = row["p_matching_ci"]
        assert low <= row["p_matching"] <= high
    assert summary["perplexity"]["before"] > 1


def test_multiplier_zero_leaves_every_logit_bitwise_unchanged(tiny, steered):
    from seethrough.model import greedy_continuations

    checkpoint, plain, tokenizer = tiny
    vector = _load(steered[2], 0.0)
    ids = torch.tensor([tokenizer("a b was born in", add_special_tokens=False)["input_ids"]] * 2)
    with torch.no_grad():
        reference = plain(input_ids=ids).logits.clone()
        for start in (0, 2):
            with vector.installed(plain, start=start):
                assert torch.equal(plain(input_ids=ids).logits, reference)
        with vector.with_multiplier(3.0).installed(plain, start=2):
            steered_logits = plain(input_ids=ids).logits
        # positions before the start are untouched, the ones from it on are not
        assert torch.equal(steered_logits[:, :2], reference[:, :2])
        assert not torch.equal(steered_logits[:, 2:], reference[:, 2:])
    prompt = ids[0].tolist()
    plain_tokens = greedy_continuations(plain, [prompt], 6)
    with vector.installed(plain, start=len(prompt) - 1):
        assert greedy_continuations(plain, [prompt], 6) == plain_tokens


def test_steering_with_a_kv_cache_equals_steering_the_whole_sequence(tiny, steered):
    """Greedy decoding with a cache steers each new position as a full pass over the sequence would."""
    checkpoint, plain, tokenizer = tiny
    vector = _load(steered[2], 6.0)
    from seethrough.model import greedy_continuations

    prompt = tokenizer("a b was born in", add_special_tokens=False)["input_ids"]
    start = len(prompt) - 1
    with vector.installed(plain, start=start):
        cached = greedy_continuations(plain, [prompt], 5)[0]
        ids = list(prompt)
        with torch.no_grad():
            for _ in range(5):
                ids.append(int(plain(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1].argmax()))
    assert cached == ids[len(prompt):]


def test_steer_bad_input(tiny, tmp_path):
    from seethrough.audit.control import SteerSettings, parse_pairs, read_pairs, steer_model
    from seethrough.model.interventions import parse_multipliers, parse_steer

    with pytest.raises(QueryError, match="pairs:2: the pair has no not_matching"):
        parse_pairs([{"prompt": "p", "matching": "a", "not_matching": "b"}, {"prompt": "p", "matching": "a"}], "pairs")
    with pytest.raises(QueryError, match="the pair has no prompt"):
        parse_pairs([{"matching": "a", "not_matching": "b"}] * 2, "pairs")
    (tmp_path / "bad.jsonl").write_text('{"prompt": "p", "matching": "a", "not_matching": "b"}\nnot json\n')
    with pytest.raises(QueryError, match="bad.jsonl:2: not valid JSON"):
        read_pairs(tmp_path / "bad.jsonl")
    for spec in ("1,two,3", "1,,3", "nan", "1,inf", ""):
        with pytest.raises(ConfigError, match="--multipliers"):
            parse_multipliers(spec)
    with pytest.raises(ConfigError, match="--multipliers"):
        SteerSettings(multipliers="a,b")
    assert parse_multipliers("0, 2,-4.5") == [0.0, 2.0, -4.5]
    assert parse_steer("out/v:-2") == (Path("out/v"), -2.0)
    for spec in ("out/v", "out/v:x", ":3"):
        with pytest.raises(ConfigError, match="--steer"):
            parse_steer(spec)
    checkpoint, _, _ = tiny
    pairs = parse_pairs([{"prompt": "a b", "matching": "c", "not_matching": "d"}] * 4, "pairs")
    with pytest.raises(ModelError, match="layer 5 is outside"):
        steer_model(checkpoint, pairs, SteerSettings(layers="5"), threads=1)


def test_a_vector_needs_its_multiplier_and_an_eraser_takes_none(fitted, steered):
    with pytest.raises(ConfigError, match="give its multiplier"):
        _load(steered[2])
    with pytest.raises(ConfigError, match="takes no multiplier"):
        _load(fitted[2], 2.0)
    assert _load(steered[2], 2.0).to_dict()["multiplier"] == 2.0


# ---- the command line ---------------------------------------------------------------------------------------


def write_lines(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_erase_steer_and_generate_commands(tiny_run, world_corpus, tmp_path):
    from typer.testing import CliRunner

    from seethrough.cli.app import app

    runner = CliRunner()
    root, _, world, _ = world_corpus
    data = write_lines(tmp_path / "cities.jsonl", city_statements(world, 12))
    pairs = write_lines(tmp_path / "pairs.jsonl", city_pairs(world, 12))
    before = folder_digest(tiny_run)
    got = runner.invoke(app, ["erase", str(tiny_run), "--data", str(data), "--layers", "1", "--out",
                              str(tmp_path / "e"), "--corpus", str(root / "corpus"), "--heldout-tokens", "64",
                              "--seq-len", "16", "--threads", "1", "--json"])
    assert got.exit_code == 0, got.output
    summary = json.loads(got.stdout)
    assert summary["layers"] == [1] and summary["sha256"] == _load(tmp_path / "e").sha256
    assert json.loads((tmp_path / "e" / "summary.json").read_text())["sha256"] == summary["sha256"]
    got = runner.invoke(app, ["steer", str(tiny_run), "--pairs", str(pairs), "--layers", "2", "--multipliers",
                              "0,3", "--out", str(tmp_path / "v"), "--threads", "1"])
    assert got.exit_code == 0, got.output
    assert "P(matching answer)" in got.stdout and (tmp_path / "v" / "vector.json").exists()
    got = runner.invoke(app, ["generate", str(tiny_run), "--prompt", "a b was born in", "--max-new-tokens", "4",
                              "--erase", str(tmp_path / "e"), "--steer", f"{tmp_path / 'v'}:2", "--json",
                              "--threads", "1"])
    assert got.exit_code == 0, got.output
    line = json.loads(got.stdout)
    assert set(line) == {"prompt", "text", "token_ids"} and line["prompt"] == "a b was born in"
    assert isinstance(line["token_ids"], list) and len(line["token_ids"]) <= 4
    assert all(isinstance(t, int) for t in line["token_ids"])
    # the text is the continuation's tokens decoded, and equals the library's answer
    from seethrough.audit.control import generate_text

    again = generate_text(tiny_run, "a b was born in", 4, erase=tmp_path / "e", steer=(tmp_path / "v", 2.0), threads=1)
    assert again.to_dict() == line
    plain = generate_text(tiny_run, "a b was born in", 4, threads=1)
    assert plain.interventions == [] and len(again.interventions) == 2

    def refused(*args):
        got = runner.invoke(app, list(args))
        assert isinstance(got.exception, (QueryError, ConfigError, ModelError)), got.output
        assert "\n" not in str(got.exception)
        return str(got.exception)

    assert "layer 3 is outside" in refused("erase", str(tiny_run), "--data", str(data), "--layers", "3")
    assert "is not a number" in refused("steer", str(tiny_run), "--pairs", str(pairs), "--layers", "1",
                                        "--multipliers", "1,x")
    one_sided = write_lines(tmp_path / "one.jsonl", [{"prompt": "a", "matching": "b"}] * 3)
    assert "the pair has no not_matching" in refused("steer", str(tiny_run), "--pairs", str(one_sided), "--layers",
                                                     "1", "--multipliers", "1")
    assert "fit one for this model with seethrough erase" in refused("generate", str(tiny_run), "--checkpoint", "0",
                                                                     "--prompt", "a", "--erase", str(tmp_path / "e"))
    assert "is a steering vector" in refused("generate", str(tiny_run), "--prompt", "a", "--erase",
                                             str(tmp_path / "v"))
    assert "VECTOR:MULTIPLIER" in refused("generate", str(tiny_run), "--prompt", "a", "--steer", str(tmp_path / "v"))
    assert "--seq-len has no effect" in refused("erase", str(tiny_run), "--data", str(data), "--layers", "1",
                                                "--seq-len", "8")
    assert folder_digest(tiny_run) == before


def test_a_checkpoint_with_an_eraser_stays_hashable_and_picklable(tiny, fitted):
    import pickle

    from seethrough.model import load_model

    checkpoint, plain, tokenizer = tiny
    with_eraser = replace(checkpoint, intervention=_load(fitted[2]))
    assert hash(with_eraser) != hash(checkpoint) and with_eraser != checkpoint
    assert hash(replace(checkpoint, intervention=None)) == hash(checkpoint)
    copy = pickle.loads(pickle.dumps(with_eraser))  # what a Ray task receives
    assert copy == with_eraser and copy.to_dict()["intervention"] == with_eraser.intervention.to_dict()
    ids = torch.tensor([tokenizer("x was born in", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(load_model(copy, threads=1)(input_ids=ids).logits,
                           load_model(with_eraser, threads=1)(input_ids=ids).logits)
    assert "intervention" not in checkpoint.to_dict()


# ---- hostile input: each refused with a one-line error naming the flag, nothing written --------------------


def refuse(*args) -> str:
    """The one-line library error a command stops with (the CLI prints it and exits 2)."""
    from typer.testing import CliRunner

    from seethrough.cli.app import app

    got = CliRunner().invoke(app, [str(a) for a in args])
    assert isinstance(got.exception, (QueryError, ConfigError, ModelError)), got.output
    assert "\n" not in str(got.exception)
    return str(got.exception)


def test_out_is_refused_unless_new_empty_or_the_same_kind(tiny, fitted, steered, tmp_path):
    import shutil

    from seethrough.audit.control import write_eraser, write_vector
    from seethrough.model.weights import weights_sha256

    checkpoint, _, _ = tiny
    model_before, weights_before = folder_digest(checkpoint.path), weights_sha256(checkpoint.path)
    with pytest.raises(ConfigError, match="holds files that are not an eraser's .*config.json"):
        write_eraser(fitted[0], checkpoint.path)  # a layer file there would change the model's weights hash
    assert folder_digest(checkpoint.path) == model_before and weights_sha256(checkpoint.path) == weights_before
    eraser_before, vector_before = folder_digest(fitted[2]), folder_digest(steered[2])
    with pytest.raises(ConfigError, match="--out .* holds an eraser"):
        write_vector(steered[0], fitted[2])
    with pytest.raises(ConfigError, match="--out .* holds a steering vector"):
        write_eraser(fitted[0], steered[2])
    assert folder_digest(fitted[2]) == eraser_before and folder_digest(steered[2]) == vector_before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match=r"not a steering vector's \(notes.txt\)"):
        write_vector(steered[0], tmp_path / "mine")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    # an earlier eraser folder is replaced, a layer it no longer has taken away
    shutil.copytree(fitted[2], tmp_path / "again")
    shutil.copy(fitted[2] / "layer-1.safetensors", tmp_path / "again" / "layer-9.safetensors")
    write_eraser(fitted[0], tmp_path / "again")
    assert not (tmp_path / "again" / "layer-9.safetensors").exists()
    assert _load(tmp_path / "again").sha256 == _load(fitted[2]).sha256


def test_erase_and_steer_check_out_before_fitting(tiny_run, fitted, world_corpus, tmp_path, monkeypatch):
    import seethrough.audit.control as control
    from seethrough.model import resolve_target

    monkeypatch.setattr(control, "erase_model", lambda *a, **k: pytest.fail("fitted before --out was checked"))
    monkeypatch.setattr(control, "steer_model", lambda *a, **k: pytest.fail("fitted before --out was checked"))
    world = world_corpus[2]
    data = write_lines(tmp_path / "cities.jsonl", city_statements(world, 6))
    pairs = write_lines(tmp_path / "pairs.jsonl", city_pairs(world, 6))
    before = folder_digest(tiny_run)
    model_folder = resolve_target(tiny_run).last.path
    assert "holds files that are not an eraser's" in refuse("erase", tiny_run, "--data", data, "--layers", "1",
                                                             "--out", model_folder)
    assert "holds an eraser" in refuse("steer", tiny_run, "--pairs", pairs, "--layers", "1", "--multipliers", "1",
                                       "--out", fitted[2])
    (tmp_path / "file").write_text("x")
    assert "is a file" in refuse("erase", tiny_run, "--data", data, "--layers", "1", "--out", tmp_path / "file")
    assert folder_digest(tiny_run) == before


def test_layers_empty_or_outside_the_blocks_are_refused(tiny, tmp_path):
    from seethrough.audit.control.common import block_layers

    assert block_layers("all", 2) == block_layers(None, 2) == [1, 2]
    assert block_layers("2,1,2", 2) == [1, 2]
    with pytest.raises(ConfigError, match="--layers '': use all, or block numbers"):
        block_layers("", 2)
    with pytest.raises(ConfigError, match="--layers ' ': use all"):
        block_layers(" ", 2)
    for spec in ("a,b", "-1", "1;2"):
        with pytest.raises(ConfigError, match=f"--layers '{spec}': use all, or block numbers like 1,3 or ranges "
                                              r"like 1-3 \(this model has blocks 1..2\)"):
            block_layers(spec, 2)
    with pytest.raises(ModelError, match="layer 99999999 is outside this model's blocks 1..2"):
        block_layers("1-99999999", 2)  # named at once, not counted up to


def test_an_edited_eraser_json_is_refused(fitted, tmp_path):
    import shutil

    for field, value, message in (("layers", [True, 1.5], "are not distinct block numbers"),
                                  ("layers", [1, 1], "are not distinct block numbers"),
                                  ("layers", [], "are not distinct block numbers"),
                                  ("method", "bogus", "method 'bogus' is not one of leace, orth")):
        folder = tmp_path / f"{field}-{len(str(value))}"
        shutil.copytree(fitted[2], folder)
        meta = json.loads((folder / "eraser.json").read_text())
        meta[field] = value
        (folder / "eraser.json").write_text(json.dumps(meta))
        with pytest.raises(ConfigError, match=message):
            _load(folder)


def test_multipliers_given_twice_or_overflowing_are_refused(tiny, steered):
    from seethrough.audit.control import SteerSettings, steer_model
    from seethrough.model.interventions import parse_multipliers, parse_steer

    with pytest.raises(ConfigError, match="'0' is given twice; give each multiplier once"):
        parse_multipliers("0,2,0")
    with pytest.raises(ConfigError, match=r"--steer 'v:nan': the multiplier 'nan' is not a finite number"):
        parse_steer("v:nan")
    checkpoint, plain, tokenizer = tiny
    # 1e30 x the vector overflows float32 in the layer norm: NaN logits, which the plain model shows too
    vector = torch.from_numpy(steered[0].vectors[1])
    hook = plain.gpt_neox.layers[0].register_forward_hook(lambda m, i, o: o + 1e30 * vector)
    try:
        with torch.no_grad():
            logits = plain(input_ids=torch.tensor([[1, 2, 3]])).logits
    finally:
        hook.remove()
    assert not torch.isfinite(logits).all()
    with pytest.raises(ModelError, match=r"at x1e\+30 on layer 1 the model's outputs are not finite"):
        steer_model(checkpoint, steered[3][:6], SteerSettings(layers="1", multipliers="0,1e30"), threads=1)


def test_generate_refuses_overflow_a_context_overrun_and_names_its_flags(tiny_run, tiny, fitted, steered, tmp_path):
    from seethrough.audit.control import generate_text
    from seethrough.audit.control.common import resolve_checkpoint

    checkpoint, plain, tokenizer = tiny
    with pytest.raises(ModelError, match="outputs on the prompt are not finite"):
        generate_text(checkpoint, "a b was born in", 4, steer=(steered[2], 1e30), threads=1)
    context = plain.config.max_position_embeddings
    prompt = len(tokenizer("a b was born in", add_special_tokens=False)["input_ids"])
    with pytest.raises(QueryError, match=f"context of {context} tokens; give at most {context - prompt}"):
        generate_text(checkpoint, "a b was born in", context - prompt + 1, threads=1)
    assert len(generate_text(checkpoint, "a b was born in", 1, threads=1).token_ids) <= 1
    with pytest.raises(ConfigError, match="--erase .*nothere does not exist; pass a folder written by seethrough "
                                          "erase --out"):
        generate_text(checkpoint, "a", 1, erase=tmp_path / "nothere")
    with pytest.raises(ConfigError, match="--steer .*nothere does not exist; pass a folder written by seethrough "
                                          "steer --out"):
        generate_text(checkpoint, "a", 1, steer=(tmp_path / "nothere", 2.0))
    with pytest.raises(ConfigError, match="--steer .* is an eraser; an eraser takes no multiplier; pass it as --erase"):
        generate_text(checkpoint, "a", 1, steer=(fitted[2], 2.0))
    with pytest.raises(ModelError, match="--checkpoint '99': the run has no checkpoint at step 99"):
        resolve_checkpoint(tiny_run, "99")


def test_an_eraser_is_checked_against_every_checkpoint_before_any_runs(tiny_run, fitted):
    from seethrough.model import resolve_target

    with pytest.raises(ModelError, match="step-0 .*fit one for this model with seethrough erase"):
        resolve_target(tiny_run, "last,0", intervention=_load(fitted[2]))
    assert resolve_target(tiny_run, "last", intervention=_load(fitted[2])).last.intervention is not None


def test_too_few_statements_to_split_and_an_empty_task_list_are_refused(tiny, tiny_run, world_corpus, tmp_path):
    from seethrough.audit.control import erase_model
    from seethrough.audit.probe import parse_probe_records

    checkpoint, _, _ = tiny
    two = parse_probe_records([{"text": "a b was born in", "label": 1}, {"text": "c d was born in", "label": 0}],
                              "two.jsonl")
    with pytest.raises(QueryError, match="two.jsonl: 1 statements of label 0 and 1 of label 1 do not split into fit "
                                         "and held-out items of both labels at --test-share 0.3"):
        erase_model(checkpoint, two, threads=1)
    data = write_lines(tmp_path / "cities.jsonl", city_statements(world_corpus[2], 6))
    for empty in (",", ""):
        assert f"--tasks {empty!r} names no task" in refuse("erase", tiny_run, "--data", data, "--layers", "1",
                                                            "--tasks", empty)


def test_windows_of_one_token_and_more_heldout_tokens_than_the_corpus_are_refused(tiny, world_corpus):
    from seethrough.audit.control import EraseSettings, SteerSettings
    from seethrough.audit.control.common import heldout_windows
    from seethrough.corpus import open_token_corpus

    for settings in (EraseSettings, SteerSettings):  # one token predicts nothing: a cross-entropy of 0 / 0
        with pytest.raises(ConfigError, match="--seq-len 1: give a whole number of at least 2"):
            settings(seq_len=1)
    corpus = open_token_corpus(world_corpus[0] / "corpus")
    with pytest.raises(QueryError, match="--heldout-tokens 100,000,000: the corpus gives fewer tokens than that in "
                                         "windows of 16; ask for fewer --heldout-tokens or a shorter --seq-len"):
        heldout_windows(corpus, 100_000_000, 16, 0)
    assert all(len(w) == 16 for w in heldout_windows(corpus, 64, 16, 0))
