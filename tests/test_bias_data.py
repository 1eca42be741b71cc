"""`bias data`: occurrence, document and co-occurrence counts equal a brute force over the documents'
tokens (word-level and byte-level BPE corpora of several shards, windows that touch document
boundaries, multi-token terms, variants inside variants); PMI and log-odds equal a hand-worked case;
sentiment equals vaderSentiment called directly; bad input is one line, nothing written."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from conftest import bpe_tokenizer, write_jsonl

PRONOUNS = ["she", "her", "he", "his", "She", "He"]
OCCUPATIONS = ["nurse", "pilot", "baker", "judge", "Nurse"]
FEELINGS = ["good", "bad", "happy", "sad", "kind", "cruel", "great", "awful"]
FILLER = ["the", "a", "said", "that", "was", "and", "of", "big", "red", "house", "to", "in", ".", ","]
GROUPS = {"gender": {"female": ["she", "her", "big red"], "male": ["he", "his"]},
          "mood": {"up": ["good", "happy"], "down": ["bad", "sad", "red", "big red"]}}  # "red" inside "big red"
TARGETS = ["nurse", "pilot", "baker", "judge", "red house", "the", "never"]


def bias_documents(seed: int = 3, n_docs: int = 260) -> list[str]:
    """Short random documents (some empty, some a single word) so that windows often reach a document's ends."""
    rng = random.Random(seed)
    words = PRONOUNS * 3 + OCCUPATIONS * 3 + FEELINGS + FILLER * 2
    docs = []
    for i in range(n_docs):
        if i % 41 == 7:
            docs.append("")
        elif i % 13 == 2:
            docs.append(rng.choice(words))
        else:
            docs.append(" ".join(rng.choice(words) for _ in range(rng.randint(2, 24))))
    return docs


def word_level_tokenizer(path: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(dict.fromkeys(PRONOUNS + OCCUPATIONS + FEELINGS + FILLER + ["never", "[UNK]"]))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tok.save(str(path))
    return path


def build(root: Path, docs: list[str], tokenizer: Path, shard_tokens: int = 1200):
    from seethrough import build_corpus, build_index, open_corpus
    from seethrough.corpus import CorpusBuildConfig

    write_jsonl(root / "docs.jsonl", docs)
    build_corpus([root / "docs.jsonl"], tokenizer, root / "corpus", CorpusBuildConfig(shard_tokens=shard_tokens))
    build_index(root / "corpus")
    index = open_corpus(root / "corpus")
    assert len(index.corpus.shards) >= 3
    return index


@pytest.fixture(scope="module")
def word_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("bias_word")
    docs = bias_documents()
    return build(root, docs, word_level_tokenizer(root / "tokenizer.json")), docs


@pytest.fixture(scope="module")
def bpe_index(tmp_path_factory):
    """Byte-level BPE over text with capitals and punctuation glued to words, so a term has several variants."""
    root = tmp_path_factory.mktemp("bias_bpe")
    rng = random.Random(8)
    docs = [d.replace(" .", ".").replace(" ,", ",") for d in bias_documents(seed=5)]
    docs = [("(" + d) if rng.random() < 0.2 else d for d in docs]
    tok = bpe_tokenizer(root / "tokenizer.json", docs, vocab=330)
    return build(root, docs, tok), docs


# ---- the brute force: plain Python over each document's token list -------------------------------


def forms(tokenizer, text: str) -> list[tuple[int, ...]]:
    """The token sequences a term is matched as: text, " text", Text, " Text" without unknown tokens."""
    unk = tokenizer.token_to_id("[UNK]")
    out = []
    for form in (text, " " + text, text[0].upper() + text[1:], " " + text[0].upper() + text[1:]):
        ids = tuple(tokenizer.encode(form, add_special_tokens=False).ids)
        if ids and unk not in ids and ids not in out:
            out.append(ids)
    return out


def matches(doc: list[int], sequences: list[tuple[int, ...]]) -> set[tuple[int, int]]:
    return {(i, i + len(s)) for s in sequences for i in range(len(doc) - len(s) + 1) if tuple(doc[i:i + len(s)]) == s}


def spans(doc: list[int], sequences: list[tuple[int, ...]]) -> list[tuple[int, int]]:
    """Occurrences: matches not inside another match of the set."""
    found = matches(doc, sequences)
    return sorted(a for a in found if not any(b != a and b[0] <= a[0] and a[1] <= b[1] for b in found))


def brute_with(doc: list[int], target: list[tuple[int, ...]], group: list[tuple[int, ...]], window: int) -> int:
    """Target occurrences with a match of any group variant wholly inside the window before or after."""
    near = matches(doc, group)
    count = 0
    for p, e in spans(doc, target):
        count += any((q >= p - window and f <= p) or (q >= e and f <= e + window) for q, f in near)
    return count


def token_docs(index, docs: list[str]) -> list[list[int]]:
    tok = index.tokenizer.tokenizer
    return [tok.encode(d, add_special_tokens=False).ids for d in docs]


def check_against_brute_force(index, docs: list[str], window: int) -> None:
    from seethrough.audit.bias import BiasDataSettings, measure_data_bias

    report = measure_data_bias(index, GROUPS, TARGETS, BiasDataSettings(window=window)).to_dict()
    tok = index.tokenizer.tokenizer
    ids = token_docs(index, docs)
    for row in report["terms"]:
        sequences = forms(tok, row["term"])
        assert [tuple(tok.encode(v, add_special_tokens=False).ids) for v in row["variants"]] == sequences
        found = [spans(d, sequences) for d in ids]
        assert row["occurrences"] == sum(map(len, found)), row
        assert row["documents"] == sum(bool(f) for f in found), row
    group_forms = {(a, g): [s for t in terms for s in forms(tok, t)] for a, members in GROUPS.items()
                   for g, terms in members.items()}
    for row in report["groups"]:
        found = [spans(d, group_forms[(row["axis"], row["group"])]) for d in ids]
        assert (row["occurrences"], row["documents"]) == (sum(map(len, found)), sum(bool(f) for f in found)), row
    assert len(report["cooccurrence"]) == len(GROUPS) * len(TARGETS)
    for row in report["cooccurrence"]:
        target = forms(tok, row["target"])
        found = [spans(d, target) for d in ids]
        assert row["occurrences"] == sum(map(len, found)), row
        assert row["documents"] == sum(bool(f) for f in found), row
        for group, n in row["with"].items():
            assert n == sum(brute_with(d, target, group_forms[(row["axis"], group)], window) for d in ids), (row, group)


@pytest.mark.parametrize("window", [1, 3, 40])
def test_word_level_counts_equal_brute_force(word_index, window):
    index, docs = word_index
    check_against_brute_force(index, docs, window)


@pytest.mark.parametrize("window", [2, 7])
def test_bpe_counts_equal_brute_force(bpe_index, window):
    index, docs = bpe_index
    check_against_brute_force(index, docs, window)


def test_variants_are_the_surface_forms_the_tokenizer_has(word_index, bpe_index):
    """Word level: the word and its capitalised form when in the vocabulary; BPE: bare and leading-space
    forms of both, each a different token sequence."""
    from seethrough.audit.bias.terms import surface_variants

    word, _ = word_index
    assert [v.text for v in surface_variants(word, "she")] == ["she", "She"]
    assert [v.text for v in surface_variants(word, "baker")] == ["baker"]
    bpe, _ = bpe_index
    texts = [v.text for v in surface_variants(bpe, "nurse")]
    assert texts == ["nurse", " nurse", "Nurse", " Nurse"]
    assert len({v.ids for v in surface_variants(bpe, "nurse")}) == 4


def test_windows_stop_at_document_boundaries(tmp_path):
    """A term at the end of one document is never near a target at the start of the next, in a hand-made case."""
    from seethrough.audit.bias import BiasDataSettings, measure_data_bias

    docs = ["nurse", "she nurse", "nurse said that she", "she", "nurse he", "he", "pilot . . . . . she"]
    index = build(tmp_path, docs, word_level_tokenizer(tmp_path / "tokenizer.json"), shard_tokens=4)
    report = measure_data_bias(index, {"g": {"f": ["she"], "m": ["he"]}}, ["nurse", "pilot"],
                               BiasDataSettings(window=3)).to_dict()
    rows = {r["target"]: r for r in report["cooccurrence"]}
    # nurse: doc 0 alone (doc 1's "she" is one token on, past the boundary); doc 1 "she" just before; doc 2
    # "she" 3 after (inside the window); doc 4 "he" after it, and doc 3's "she" just before it in another document
    assert rows["nurse"]["occurrences"] == 4 and rows["nurse"]["with"] == {"f": 2, "m": 1}
    assert rows["pilot"]["with"] == {"f": 0, "m": 0}  # "she" is 6 tokens away
    assert rows["pilot"]["share"] == {"f": None, "m": None} and "window" in rows["pilot"]["note"]


def test_spans_inside_another_of_the_same_set_count_once():
    """Hand-made spans: (start, length, owner). Inside another of its owner: dropped; of another owner, or
    overlapping without being inside: kept."""
    from seethrough.audit.bias.counting import _without_contained

    starts = np.array([5, 5, 6, 10, 11, 20, 21, 5, 30])
    lengths = np.array([3, 1, 2, 2, 2, 4, 1, 1, 1])
    owner = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1])
    kept = _without_contained(starts, lengths, owner)
    assert sorted(zip(kept.starts.tolist(), kept.lengths.tolist(), kept.owner.tolist())) == [
        (5, 1, 1), (5, 3, 0), (10, 2, 0), (11, 2, 0), (20, 4, 0), (30, 1, 1)]


def test_pmi_and_log_odds_equal_a_hand_worked_case():
    from seethrough.audit.bias.data import log_odds_dirichlet, pmi, shares

    together = np.array([[3, 1, 0], [1, 3, 0]])  # groups f, m x targets a, b, c
    occurrences = np.array([4, 6, 0])  # b also occurs twice with no group near it; c never
    group_occurrences = np.array([10.0, 30.0])
    share = shares(together)
    assert share[:, 0].tolist() == [0.75, 0.25] and share[:, 1].tolist() == [0.25, 0.75]
    assert np.isnan(share[:, 2]).all()
    value = pmi(together, group_occurrences)
    # base rates 10/40 and 30/40: a is near f three times as often as f's base rate would give
    assert value[0, 0] == pytest.approx(math.log(0.75 / 0.25)) and value[1, 0] == pytest.approx(math.log(0.25 / 0.75))
    assert value[0, 1] == pytest.approx(0.0) and value[1, 1] == pytest.approx(0.0)
    delta, z = log_odds_dirichlet(together, occurrences)
    # prior: the targets' occurrences 4, 6, 0 scaled to the 8 co-occurrences: 3.2, 4.8, 0; a0 = 8
    omega_f = (3 + 3.2) / (4 + 8 - 3 - 3.2)
    omega_m = (1 + 3.2) / (4 + 8 - 1 - 3.2)
    hand = math.log(omega_f) - math.log(omega_m)
    assert delta[0, 0] == pytest.approx(hand) and hand == pytest.approx(0.685730, abs=1e-6)
    assert z[0, 0] == pytest.approx(hand / math.sqrt(1 / 6.2 + 1 / 4.2))
    assert delta[1, 0] == pytest.approx(-hand)
    # m against f for b: the mirror counts with b's larger prior, the same delta but a smaller variance
    omega_m, omega_f = (3 + 4.8) / (4 + 8 - 3 - 4.8), (1 + 4.8) / (4 + 8 - 1 - 4.8)
    assert delta[1, 1] == pytest.approx(math.log(omega_m) - math.log(omega_f))
    assert z[1, 1] == pytest.approx((math.log(omega_m) - math.log(omega_f)) / math.sqrt(1 / 7.8 + 1 / 5.8))
    assert np.isnan(delta[:, 2]).all() and np.isnan(z[:, 2]).all()


def test_sentiment_equals_vader_called_directly(word_index):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from seethrough.audit.bias import BiasDataSettings, measure_data_bias

    index, docs = word_index
    window = 4
    report = measure_data_bias(index, GROUPS, ["nurse"], BiasDataSettings(window=window)).to_dict()
    analyzer = SentimentIntensityAnalyzer()
    tok = index.tokenizer.tokenizer
    ids = token_docs(index, docs)
    for row in report["sentiment"]:
        sequences = [s for t in GROUPS[row["axis"]][row["group"]] for s in forms(tok, t)]
        texts = [tok.decode(d[max(0, q - window):f + window], skip_special_tokens=False)
                 for d in ids for q, f in spans(d, sequences)]
        scores = [analyzer.polarity_scores(t)["compound"] for t in texts]
        assert row["windows"] == row["occurrences"] == len(scores) and not row["sampled"]
        assert row["mean"] == pytest.approx(sum(scores) / len(scores), abs=1e-12)
        assert row["ci"][0] <= row["mean"] <= row["ci"][1]
    means = {r["group"]: r["mean"] for r in report["sentiment"]}
    assert means["up"] > 0 > means["down"]  # the windows hold the group's own feeling words


def test_sentiment_sample_is_the_documented_seeded_draw(word_index):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from seethrough.audit.bias import BiasDataSettings, measure_data_bias

    index, docs = word_index
    settings = BiasDataSettings(window=2, max_windows=25, seed=7)
    report = measure_data_bias(index, GROUPS, ["nurse"], settings).to_dict()
    again = measure_data_bias(index, GROUPS, ["nurse"], settings).to_dict()
    assert report["sentiment"] == again["sentiment"]
    tok = index.tokenizer.tokenizer
    ids = token_docs(index, docs)
    analyzer = SentimentIntensityAnalyzer()
    number = [(r["axis"], r["group"]) for r in report["sentiment"]].index(("gender", "female"))
    row = report["sentiment"][number]
    sequences = [s for t in GROUPS["gender"]["female"] for s in forms(tok, t)]
    texts = [tok.decode(d[max(0, q - 2):f + 2], skip_special_tokens=False) for d in ids for q, f in spans(d, sequences)]
    picks = np.sort(np.random.default_rng([7, number]).choice(len(texts), size=25, replace=False))
    assert row["sampled"] and row["windows"] == 25 and row["occurrences"] == len(texts)
    assert row["mean"] == pytest.approx(np.mean([analyzer.polarity_scores(texts[i])["compound"] for i in picks]))
    assert any("sample" in note and "female" in note for note in report["notes"])


def test_a_target_that_never_occurs_is_zero_with_a_note(word_index):
    from seethrough.audit.bias import measure_data_bias

    index, _ = word_index
    report = measure_data_bias(index, GROUPS, ["never", "nurse"]).to_dict()
    row = next(r for r in report["cooccurrence"] if r["target"] == "never")
    assert row["occurrences"] == 0 and row["with"] == {"female": 0, "male": 0}
    assert row["share"] == {"female": None, "male": None} and row["pmi"] == {"female": None, "male": None}
    assert row["log_odds"]["female"] == {"value": None, "z": None} and "never occurs" in row["note"]
    assert any("never occur" in n and "never" in n for n in report["notes"])


def test_builtin_lists_drop_what_the_tokenizer_lacks_with_a_note(word_index):
    from seethrough.audit.bias import measure_data_bias

    index, _ = word_index
    report = measure_data_bias(index).to_dict()
    assert {r["term"] for r in report["terms"]} == {"she", "her", "he", "his"}
    assert {r["target"] for r in report["cooccurrence"]} == {"nurse", "pilot", "baker", "judge", "kind"}
    assert any("religion dropped" in n for n in report["notes"]) and any("woman" in n for n in report["notes"])


@pytest.mark.parametrize("groups, message", [
    ({"gender": {"female": [], "male": ["he"]}}, "gender/female is empty"),
    ({"gender": {"female": ["she"]}}, "at least two groups"),
    ({"gender": {"female": ["she"], "male": ["she"]}}, "in both gender/female and gender/male"),
    ({"gender": {"female": ["she", "zebra"], "male": ["he"]}}, "term 'zebra' of gender/female"),
    ({"gender": ["she"]}, "must be an object of groups"),
    ({}, "JSON object of axes"),
    ([], "groups must be builtin, a JSON file or a dict"),
])
def test_bad_groups_are_one_line_errors(word_index, groups, message):
    from seethrough.audit.bias import measure_data_bias
    from seethrough.errors import ConfigError

    index, _ = word_index
    with pytest.raises(ConfigError, match=message) as caught:
        measure_data_bias(index, groups, ["nurse"])
    assert "\n" not in str(caught.value)


def test_target_files_and_bad_targets(word_index, tmp_path):
    from seethrough.audit.bias import measure_data_bias
    from seethrough.audit.bias.terms import target_spec
    from seethrough.errors import ConfigError

    (tmp_path / "t.txt").write_text("nurse\n\n pilot \nnurse\n")
    (tmp_path / "t.json").write_text('["nurse", "pilot"]')
    (tmp_path / "bad.json").write_text('["nurse", 3]')
    (tmp_path / "broken.json").write_text('["nurse", ')
    assert target_spec(tmp_path / "t.txt") == target_spec(tmp_path / "t.json") == (["nurse", "pilot"], False)
    index, _ = word_index
    for path, message in ((tmp_path / "bad.json", "list of strings"), (tmp_path / "broken.json", "not valid JSON"),
                          (tmp_path / "missing.txt", "cannot read --targets")):
        with pytest.raises(ConfigError, match=message):
            measure_data_bias(index, GROUPS, path)
    with pytest.raises(ConfigError, match="target 'zebra'"):
        measure_data_bias(index, GROUPS, ["nurse", "zebra"])


def test_settings_are_checked():
    from seethrough.audit.bias import BiasDataSettings
    from seethrough.errors import ConfigError

    for kwargs, flag in (({"window": 0}, "--window"), ({"max_windows": -1}, "--max-windows"), ({"top": 0}, "--top"),
                         ({"seed": -1}, "--seed"), ({"window": True}, "--window")):
        with pytest.raises(ConfigError, match=flag):
            BiasDataSettings(**kwargs)


def test_written_files_and_the_cli(word_index, tmp_path):
    """--out writes the report and its tables (the CSV rows are the report's); --json prints the same object;
    bad input exits 2 with one line and writes nothing."""
    from typer.testing import CliRunner

    from seethrough.audit.bias import BiasDataSettings, measure_data_bias
    from seethrough.cli.app import app

    index, _ = word_index
    (tmp_path / "groups.json").write_text(json.dumps(GROUPS))
    (tmp_path / "targets.json").write_text(json.dumps(TARGETS))
    args = ["bias", "data", str(index.path), "--groups", str(tmp_path / "groups.json"), "--targets",
            str(tmp_path / "targets.json"), "--window", "3"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    expected = measure_data_bias(index, GROUPS, TARGETS, BiasDataSettings(window=3)).to_dict()
    written = json.loads((tmp_path / "out" / "bias_data.json").read_text())
    assert printed["cooccurrence"] == written["cooccurrence"] == json.loads(json.dumps(expected["cooccurrence"]))
    assert printed["sentiment"] == written["sentiment"]
    for name in ("terms.csv", "cooccurrence.csv", "sentiment.csv", "share_by_target.png", "sentiment_by_group.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    lines = (tmp_path / "out" / "cooccurrence.csv").read_text().splitlines()
    assert len(lines) == 1 + sum(len(r["with"]) for r in written["cooccurrence"])
    assert CliRunner().invoke(app, args).exit_code == 0  # the plain-text view
    (tmp_path / "empty.json").write_text(json.dumps({"gender": {"female": [], "male": ["he"]}}))
    bad = CliRunner().invoke(app, [*args[:3], "--groups", str(tmp_path / "empty.json"), "--out", str(tmp_path / "o2")])
    assert "is empty" in str(bad.exception) and "\n" not in str(bad.exception)
    assert not (tmp_path / "o2").exists()
