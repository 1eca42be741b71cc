"""`seethrough facts`: evidence, categories, rows and steps against brute force over the documents and a
replay of the data order; rankings against lm-eval's `hf` backend; chains against transformers' own
greedy `generate`; Wilson, Newcombe and the exact binomial against published worked examples and scipy."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from seethrough.errors import ConfigError, ModelError, QueryError

EOD = "<|endoftext|>"
PEOPLE = [f"p{i}" for i in range(30)]
CITIES = [f"c{i}" for i in range(8)]
COMPANIES = [f"k{i}" for i in range(8)]
FILLER = [f"f{i}" for i in range(12)]
WORDS = [EOD, "[UNK]", "is", "based", "in", "was", "born", "works", "for", ".", "near"] + PEOPLE + CITIES + COMPANIES \
    + FILLER


# ---- the world: planted stated, derivable and unknowable facts, window edges, document boundaries ----------

def make_world(seed: int = 3):
    """Documents and questions. People 0-9 have birth bios (1-4 copies); people 0-19 have employer bios;
    companies 0-6 have HQ documents (k7's HQ is never stated). People 20-29 are the control group C.
    Filler documents hold filler words and cities, never people. Three "near" documents put a person and
    a city 3, 4 and 3 (answer first) tokens apart, and one document ends with p28 right before one that
    starts with c6."""
    rng = random.Random(seed)
    hq = dict(zip(COMPANIES, CITIES))
    born = {p: rng.choice(CITIES) for p in PEOPLE}
    works = {p: rng.choice(COMPANIES) for p in PEOPLE}
    works["p3"] = works["p4"] = "k7"  # stated employer whose HQ is never stated: unknowable
    docs = []
    for i, p in enumerate(PEOPLE[:10]):
        docs += [f"{p} was born in {born[p]} ."] * (1 + i % 4)
    for p in PEOPLE[:20]:
        docs += [f"{p} works for {works[p]} ."] * 2
    for k in COMPANIES[:7]:
        docs += [f"{k} is based in {hq[k]} ."] * 3
    for _ in range(40):
        docs.append(" ".join(rng.choices(FILLER + CITIES, k=rng.randint(3, 12))))
    rng.shuffle(docs)
    special = ["p25 f0 f1 c3 .", "p26 f0 f1 f2 c4 .", "c5 f0 f1 p27 .", "f3 f4 p28", "c6 f5 ."]
    for d, at in zip(special, (17, 60, 101, 140, 141)):
        docs.insert(at, d)
    groups = {**{p: "S" for p in PEOPLE[:10]}, **{p: "D" for p in PEOPLE[10:20]}, **{p: "C" for p in PEOPLE[20:]}}
    questions = []
    for i, p in enumerate(PEOPLE):
        questions.append({"id": f"born-{p}", "subject": p, "prompt": f"{p} was born in", "answer": born[p],
                          "candidates": CITIES, "relation": "birth_city", "group": groups[p]})
        city = hq[works[p]]
        questions.append({"id": f"hq-{p}", "subject": p, "prompt": f"{p} works for", "answer": city,
                          "candidates": CITIES, "relation": "employer_city", "group": groups[p],
                          "format": "chain" if i % 2 else "direct",
                          "hops": [{"subject": p, "answer": works[p]}, {"subject": works[p], "answer": city}]})
    for p, c in (("p25", "c3"), ("p26", "c4"), ("p27", "c5"), ("p28", "c6")):
        questions.append({"id": f"near-{p}", "subject": p, "prompt": f"{p} near", "answer": c, "candidates": CITIES,
                          "relation": "near", "group": "E"})
    return docs, questions


def word_tokenizer(path: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.Replace("~", "")  # "~" reads as nothing: an entity of no tokens
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.save(str(path))
    return path


def write_lines(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The corpus (several shards) with its index, a 16-step run (checkpoints 0, 1, 2, 4, 8, 16), the
    questions file, and the documents as token lists (encoded here, apart from the corpus)."""
    from tokenizers import Tokenizer

    from seethrough import build_corpus, build_index, open_corpus
    from seethrough.corpus import CorpusBuildConfig
    from seethrough.train import train

    root = tmp_path_factory.mktemp("facts")
    docs, questions = make_world()
    tokenizer = word_tokenizer(root / "tokenizer.json")
    write_lines(root / "docs.jsonl", [{"text": d} for d in docs])
    build_corpus([root / "docs.jsonl"], tokenizer, root / "corpus", CorpusBuildConfig(shard_tokens=300))
    build_index(root / "corpus")
    train(root / "corpus", root / "run", {"model_size": "tiny", "seq_len": 16, "batch_size": 8, "steps": 16,
                                          "threads": 1})
    write_lines(root / "questions.jsonl", questions)
    index = open_corpus(root / "corpus")
    assert len(index.corpus.shards) >= 3
    tok = Tokenizer.from_file(str(tokenizer))
    token_docs = [tok.encode(d, add_special_tokens=False).ids for d in docs]
    return {"root": root, "index": index, "questions": questions, "docs": docs, "token_docs": token_docs, "tok": tok}


@pytest.fixture(scope="module")
def report(world):
    """The audit over every checkpoint, control group C."""
    from seethrough.audit.facts import FactsSettings, audit_facts, read_questions

    return audit_facts(world["root"] / "run", world["index"], read_questions(world["root"] / "questions.jsonl"),
                       FactsSettings(control="C"), checkpoints="all", threads=1)


# ---- brute force -----------------------------------------------------------------------------------------

def forms_of(tok, text):
    """encode(text) and encode(" " + text), distinct."""
    out = []
    for variant in (text, " " + text):
        ids = tok.encode(variant, add_special_tokens=False).ids
        if ids and ids not in out:
            out.append(ids)
    return out


def spans(seq, forms):
    return {(i, i + len(f)) for f in forms for i in range(len(seq) - len(f) + 1) if list(seq[i:i + len(f)]) == f}


def together(seq, subject_forms, answer_forms, window=None):
    """Some subject mention and some answer mention of ``seq`` that share no token and (with ``window``)
    start at most ``window`` apart."""
    return any((s1 <= a0 or a1 <= s0) and (window is None or abs(s0 - a0) <= window)
               for s0, s1 in spans(seq, subject_forms) for a0, a1 in spans(seq, answer_forms))


def brute_documents(world, subject, answer, window=None):
    tok = world["tok"]
    sf, af = forms_of(tok, subject), forms_of(tok, answer)
    return [d for d, seq in enumerate(world["token_docs"]) if together(seq, sf, af, window)]


def replay(world, run, subject, answer, before_step, window=None):
    """From the batches themselves (``run.batch``): every (step, row) before ``before_step`` whose row holds a
    co-occurrence within one document (rows split at end-of-document tokens), and whether any row held both."""
    tok = world["tok"]
    sf, af = forms_of(tok, subject), forms_of(tok, answer)
    eod = run.order.spec.eod_id
    steps, same_row = [], False
    for step in range(before_step):
        for row in run.batch(step).token_ids.tolist():
            cuts = [i for i, t in enumerate(row) if t == eod]
            pieces = [row[a + 1:b] for a, b in zip([-1] + cuts, cuts + [len(row)])]
            if any(together(piece, sf, af, window) for piece in pieces):
                steps.append(step)
            same_row |= together(row, sf, af)
    return steps, same_row


# ---- evidence and categories -----------------------------------------------------------------------------

@pytest.mark.parametrize("window", [None, 1, 3, 4])
def test_categories_and_documents_equal_a_brute_force_search(world, window):
    from seethrough.audit.facts import FactsSettings, find_evidence, parse_questions

    # and two pairs whose mentions can overlap: an entity with itself, and two phrases sharing "based"
    overlapping = [{"id": "self", "subject": "c2", "prompt": "c2 is", "answer": "c2", "candidates": CITIES},
                   {"id": "shared", "subject": "k1 is based", "prompt": "k1 is", "answer": "based in c1",
                    "candidates": ["based in c1", "based in c2"]}]
    questions = parse_questions(world["questions"] + overlapping)
    evidence = find_evidence(world["index"], questions, FactsSettings(window=window))
    seen_categories = set()
    for q, e in zip(questions, evidence):
        expected = brute_documents(world, q.subject, q.answer, window)
        assert e.pair.documents.tolist() == expected, q.id
        hops = [brute_documents(world, h.subject, h.answer, window) for h in q.hops]
        assert [h.documents.tolist() for h in e.hops] == hops, q.id
        category = ("stated" if expected else "derivable" if hops and all(hops) else "unknowable" if hops
                    else "not_stated")
        assert e.category == category, q.id
        seen_categories.add(category)
    if window is None:
        assert seen_categories == {"stated", "derivable", "unknowable", "not_stated"}


def test_window_edges_and_document_boundaries(world):
    """Planted: p25 and c3 start 3 apart, p26 and c4 4 apart, c5 three before p27; p28 ends one document and
    c6 starts the next. A window counts start to start, both ways, and never crosses a document."""
    from seethrough.audit.facts import FactsSettings, find_evidence, parse_questions

    near = parse_questions([q for q in world["questions"] if q["relation"] == "near"])
    stated = {w: [e.category == "stated" for e in find_evidence(world["index"], near, FactsSettings(window=w))]
              for w in (None, 2, 3, 4)}
    assert stated == {None: [True, True, True, False], 2: [False, False, False, False],
                      3: [True, False, True, False], 4: [True, True, True, False]}
    boundary = world["docs"].index("f3 f4 p28")
    assert world["docs"][boundary + 1] == "c6 f5 ."


def test_documents_are_listed_up_to_the_limit_and_counted_in_full(world, report):
    result = next(r for r in report.results["step-16"] if r.evidence.pair.count >= 3)
    listed = result.to_dict(max_documents=2)
    assert listed["evidence"]["count"] == result.evidence.pair.count >= 3
    assert listed["evidence"]["documents"] == result.evidence.pair.documents[:2].tolist()
    assert result.to_dict()["evidence"]["documents"] == result.evidence.pair.documents.tolist()


def test_rows_steps_and_same_row_equal_a_replay_of_the_data_order(world, report):
    """first_step, last_step, exposures and same_row of every question and hop, at every checkpoint, from
    the batches each step trained on."""
    from seethrough.train import open_run

    run = open_run(world["root"] / "run")
    found_same_row_only = False
    pairs = {}
    for label, results in report.results.items():
        for r in results:
            step = r.step
            items = [(r.question.subject, r.question.answer, r.seen())] + \
                [(h.subject, h.answer, s) for h, s in zip(r.question.hops, r.hop_seen())]
            for subject, answer, seen in items:
                key = (subject, answer, step)
                if key not in pairs:
                    pairs[key] = replay(world, run, subject, answer, step)
                steps, same_row = pairs[key]
                assert seen == {"first_step": steps[0] if steps else None, "last_step": steps[-1] if steps else None,
                                "exposures": len(steps), "same_row": same_row}, (label, subject, answer)
                found_same_row_only |= same_row and not steps
    assert found_same_row_only  # some pairs shared a packed row without co-occurring in a document
    assert any(len(steps) > len(set(steps)) or len(steps) > 2 for steps, _ in pairs.values())


MULTI_TOKEN = [("k1 is based", "based in c1"), ("c2", "c2"), ("p1 was", "born in"), ("works for", "k2 ."),
               ("f0 f1", "f1 c3"), ("born in", "was"), ("in c1", "k1")]
"""Pairs of several-token phrases, some overlapping: rows must hold both mentions whole and apart."""


@pytest.mark.parametrize("window", [None, 3])
def test_several_token_and_windowed_pairs_equal_a_replay_of_the_data_order(world, window):
    from seethrough.audit.facts import FactsSettings, find_evidence, parse_questions
    from seethrough.train import open_run

    run = open_run(world["root"] / "run")
    near = [q for q in world["questions"] if q["relation"] == "near"]
    near += [{"id": f"m{i}", "subject": s, "prompt": s, "answer": a, "candidates": [a]}
             for i, (s, a) in enumerate(MULTI_TOKEN)]
    questions = parse_questions(near)
    exposed = 0
    for e, q in zip(find_evidence(world["index"], questions, FactsSettings(window=window), run), questions):
        assert e.pair.documents.tolist() == brute_documents(world, q.subject, q.answer, window)
        for step in (5, 16):
            steps, same_row = replay(world, run, q.subject, q.answer, step, window=window)
            assert e.pair.seen_before(step) == {"first_step": steps[0] if steps else None,
                                                "last_step": steps[-1] if steps else None, "exposures": len(steps),
                                                "same_row": same_row}, (q.subject, q.answer, step)
            exposed += len(steps)
    assert exposed


def test_first_learned_step_and_exposures_equal_a_replay(world, report):
    from seethrough.train import open_run

    run = open_run(world["root"] / "run")
    labels = sorted(report.results, key=lambda label: report.checkpoints[label].step)
    table = report.first_learned()
    assert len(table) == len(report.questions)
    learned = 0
    for i, row in enumerate(table):
        series = [report.results[label][i] for label in labels]
        first = next((r for r in series if r.correct), None)
        assert row["first_correct_step"] == (first.step if first else None)
        if first is None:
            assert row["exposures_before"] is None
            continue
        learned += 1
        q = report.questions[i]
        own = len(replay(world, run, q.subject, q.answer, first.step)[0])
        hops = [len(replay(world, run, h.subject, h.answer, first.step)[0]) for h in q.hops]
        assert row["evidence_exposures_before"] == own and row["hop_exposures_before"] == hops
        assert row["exposures_before"] == (own if row["category"] == "stated" or not hops else min(hops))
        later = [r.correct for r in series if r.step >= first.step]
        assert row["stays_correct"] == all(later)
    assert learned > 0


# ---- the model's answers ---------------------------------------------------------------------------------

def test_rankings_equal_lm_evals_hf_backend(world, report):
    """Every candidate's log-likelihood as lm-eval's `hf` backend computes it (same requests), within 1e-4;
    predicted, rank and p_answer follow from them."""
    from types import SimpleNamespace

    pytest.importorskip("lm_eval")
    from lm_eval.models.huggingface import HFLM

    for label in ("step-4", "step-16"):
        hf = HFLM(pretrained=str(world["root"] / "run" / "checkpoints" / label), device="cpu", batch_size=1,
                  dtype="float32")
        results = [r for r in report.results[label] if r.question.format == "direct"]
        requests = [SimpleNamespace(args=(r.question.prompt, " " + c)) for r in results for c in r.question.candidates]
        theirs = iter(s for s, _ in hf.loglikelihood(requests))
        decided = 0
        for r in results:
            values = [next(theirs) for _ in r.question.candidates]
            assert r.answer.logprobs == pytest.approx(values, abs=1e-4)
            order = sorted(values, reverse=True)
            if order[0] - order[1] > 1e-3:  # no near tie: the prediction is the same
                decided += 1
                assert r.answer.predicted == r.question.candidates[int(np.argmax(values))]
            k = r.question.candidates.index(r.question.answer)
            assert r.answer.rank == 1 + sum(v > values[k] + 1e-4 for v in values) or \
                any(abs(v - values[k]) <= 1e-4 for j, v in enumerate(values) if j != k)
            assert r.answer.p_answer == pytest.approx(math.exp(values[k]) / sum(map(math.exp, values)), abs=1e-4)
            assert r.answer.correct == (r.answer.predicted == r.question.answer)
        assert decided >= len(results) // 2


def test_chains_equal_greedy_generate_and_name_their_bridges(world, report):
    """Chain items: the text transformers' own greedy ``generate`` writes after the prompt (cut at the end of
    document), the last candidate it names, and whether it names the bridge."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = world["root"] / "run" / "checkpoints" / "step-16"
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tok, eod = world["tok"], WORDS.index(EOD)
    chains = [r for r in report.results["step-16"] if r.question.format == "chain"]
    assert chains
    for r in chains:
        prompt = tok.encode(r.question.prompt, add_special_tokens=False).ids
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt]), max_new_tokens=32, do_sample=False, eos_token_id=eod,
                                 pad_token_id=eod)[0, len(prompt):].tolist()
        kept = out[:out.index(eod)] if eod in out else out
        assert r.answer.chain == tok.decode(kept)
        words = [tok.id_to_token(t) for t in kept]  # word-level: one token per word
        named = [w for w in words if w in r.question.candidates]
        assert r.answer.predicted == (named[-1] if named else None)
        assert r.answer.named == [r.question.hops[0].answer in words]
        assert r.answer.rank is None and r.answer.p_answer is None


def test_last_candidate_prefers_the_last_whole_word():
    from seethrough.audit.facts import last_candidate

    assert last_candidate("York then New York", ["York", "New York"]) == "New York"
    assert last_candidate("Parisian Paris Lyon.", ["Paris", "Lyon"]) == "Lyon"
    assert last_candidate("Parisian", ["Paris"]) is None


def test_prior_is_the_answers_share_of_candidate_occurrences(world, report):
    tok = world["tok"]
    counts = {c: sum(len(spans(seq, forms_of(tok, c))) for seq in world["token_docs"]) for c in CITIES}
    for r in report.results["step-16"]:
        assert r.evidence.prior == pytest.approx(counts[r.question.answer] / sum(counts.values()))


def test_a_model_folder_has_documents_but_no_steps(world, report):
    from seethrough.audit.facts import FactsSettings, audit_facts, read_questions

    folder = world["root"] / "run" / "checkpoints" / "step-16"
    alone = audit_facts(folder, world["index"], read_questions(world["root"] / "questions.jsonl"),
                        FactsSettings(control="C"), threads=1)
    (label,) = alone.results
    for mine, run_result in zip(alone.results[label], report.results["step-16"]):
        d = mine.to_dict()
        assert d["step"] is None and d["evidence"]["first_step"] is None and d["evidence"]["same_row"] is None
        assert d["category"] == run_result.category and d["evidence"]["count"] == run_result.evidence.pair.count
        assert d["predicted"] == run_result.answer.predicted
    assert alone.first_learned() == []


# ---- aggregates and verdicts -----------------------------------------------------------------------------

def _result(category, group, correct, relation="r", form="direct", candidates=4):
    from seethrough.audit.cooccurrence import PairEvidence
    from seethrough.audit.facts import FactResult, ModelAnswer, QuestionEvidence
    from seethrough.audit.fact_questions import FactQuestion

    names = [f"x{i}" for i in range(candidates)]
    q = FactQuestion("q", "s", "prompt", names[0], names, relation, form, [], group)
    pair = PairEvidence("s", names[0], [[1]], [[2]], np.arange(1 if category == "stated" else 0))
    e = QuestionEvidence(pair, [], category, [1] * candidates, 1)
    return FactResult(q, e, "m", None, ModelAnswer(names[0] if correct else names[1], correct))


def _arm(category, group, correct, n, **kw):
    return [_result(category, group, i < correct, **kw) for i in range(n)]


def test_aggregates_compare_with_the_control_by_newcombe_and_give_only_supported_verdicts():
    from scipy.stats import binomtest

    from seethrough.audit.facts import aggregate

    results = (_arm("stated", "S", 56, 70) + _arm("unknowable", "C", 48, 80)
               + _arm("derivable", "D", 9, 10, relation="r2") + _arm("unknowable", "C", 3, 10, relation="r2")
               + _arm("stated", "T", 44, 80) + _arm("derivable", "U", 1, 20, relation="r2")
               + _arm("derivable", "V", 5, 10, form="chain") + _arm("not_stated", "W", 2, 2, relation="r2"))
    rows = {(r["group"], r["relation"]): r for r in aggregate(results, control="C")}
    s = rows[("S", "r")]
    assert (s["n"], s["correct"], s["accuracy"], s["chance"]) == (70, 56, 0.8, 0.25)
    assert s["difference"] == pytest.approx(0.2)
    assert s["difference_ci"] == pytest.approx([0.0524, 0.3339], abs=5e-5)  # Newcombe 1998, Table II (a)
    assert s["control"]["n"] == 80 and s["control"]["correct"] == 48 and s["verdict"] == "recalled"
    assert s["p_vs_chance"] == pytest.approx(binomtest(56, 70, 0.25, alternative="greater").pvalue, rel=1e-9)
    d = rows[("D", "r2")]
    assert d["difference_ci"] == pytest.approx([0.1705, 0.8090], abs=5e-5)  # Table II (b)
    assert d["verdict"] == "derived above control"
    assert rows[("T", "r")]["verdict"] == "not distinguishable from control"  # 0.55 vs 0.6
    assert rows[("U", "r2")]["verdict"] == "not distinguishable from control"  # 1/20 vs 3/10: CI reaches 0
    assert rows[("U", "r2")]["difference_ci"][1] > 0
    assert rows[("W", "r2")]["verdict"] == "not distinguishable from control"
    assert rows[("V", "r")]["baseline"] == "chance"  # no control item in chain format
    assert rows[("V", "r")]["verdict"] == "not distinguishable from chance"  # 5/10: Wilson [0.24, 0.76]
    assert rows[("C", "r")]["verdict"] == rows[("C", "r2")]["verdict"] == "control"
    below = {(r["group"], r["relation"]): r
             for r in aggregate(_arm("stated", "S", 0, 40) + _arm("unknowable", "C", 30, 40), control="C")}
    assert below[("S", "r")]["verdict"] == "below control"
    alone = {r["group"]: r for r in aggregate(_arm("stated", "S", 9, 20) + _arm("derivable", "D", 4, 20)
                                              + _arm("unknowable", "C", 0, 30))}
    assert alone["S"]["verdict"] == "recalled" and alone["S"]["accuracy_ci"][0] > 0.25  # Wilson [0.26, 0.66]
    assert alone["D"]["verdict"] == "not distinguishable from chance"
    assert alone["C"]["verdict"] == "below chance" and alone["C"]["control"] is None


# ---- intervals -------------------------------------------------------------------------------------------

WILSON_CASES = [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)]
"""Newcombe 1998, "Two-sided confidence intervals for the single proportion", method 3 (score)."""

NEWCOMBE_CASES = [((56, 70, 48, 80), (0.0524, 0.3339)), ((9, 10, 3, 10), (0.1705, 0.8090)),
                  ((5, 56, 0, 29), (-0.0381, 0.1926)), ((0, 10, 0, 20), (-0.1611, 0.2775)),
                  ((0, 10, 0, 10), (-0.2775, 0.2775)), ((10, 10, 0, 20), (0.6791, 1.0)),
                  ((10, 10, 0, 10), (0.6075, 1.0))]
"""Newcombe 1998, "Interval estimation for the difference between independent proportions", Table II, method 10."""


@pytest.mark.parametrize("k,n,lo,hi", WILSON_CASES)
def test_wilson_equals_newcombes_worked_examples(k, n, lo, hi):
    from seethrough.audit.intervals import wilson_interval

    assert wilson_interval(k, n) == pytest.approx((lo, hi), abs=5e-5)


@pytest.mark.parametrize("cells,expected", NEWCOMBE_CASES)
def test_newcombe_hybrid_score_equals_the_published_table(cells, expected):
    from seethrough.audit.intervals import newcombe_interval

    assert newcombe_interval(*cells) == pytest.approx(expected, abs=5e-5)


def test_wilson_and_newcombe_equal_scipys_wilson_composed_by_hand():
    from scipy.stats import binomtest

    from seethrough.audit.intervals import newcombe_interval, wilson_interval

    rng = random.Random(0)
    for _ in range(200):
        n1, n2 = rng.randint(1, 300), rng.randint(1, 300)
        k1, k2 = rng.randint(0, n1), rng.randint(0, n2)
        confidence = rng.choice([0.9, 0.95, 0.99])
        a = binomtest(k1, n1).proportion_ci(confidence_level=confidence, method="wilson")
        b = binomtest(k2, n2).proportion_ci(confidence_level=confidence, method="wilson")
        assert wilson_interval(k1, n1, confidence) == pytest.approx((a.low, a.high), abs=1e-12)
        p1, p2 = k1 / n1, k2 / n2
        expected = (p1 - p2 - math.sqrt((p1 - a.low) ** 2 + (b.high - p2) ** 2),
                    p1 - p2 + math.sqrt((a.high - p1) ** 2 + (p2 - b.low) ** 2))
        assert newcombe_interval(k1, n1, k2, n2, confidence) == pytest.approx(expected, abs=1e-12)


def test_exact_p_against_chance_equals_scipy_and_enumeration():
    from scipy.stats import binomtest

    from seethrough.audit.intervals import p_at_least

    for k, n, p in [(7, 20, 0.25), (0, 5, 0.5), (30, 30, 1 / 16), (3, 400, 1 / 16), (250, 1000, 0.25)]:
        assert p_at_least(k, [p] * n) == pytest.approx(binomtest(k, n, p, alternative="greater").pvalue, rel=1e-9)
    chances = [0.5, 0.25, 0.25, 0.1, 1 / 3, 0.5, 0.2]
    for k in range(len(chances) + 2):
        exact = sum(math.prod(c if hit else 1 - c for c, hit in zip(chances, hits))
                    for hits in product([0, 1], repeat=len(chances)) if sum(hits) >= k)
        assert p_at_least(k, chances) == pytest.approx(exact, abs=1e-12)


# ---- BPE: both forms of an entity ------------------------------------------------------------------------

def test_bpe_entities_are_found_with_and_without_a_leading_space(tmp_path):
    """Byte-level BPE writes "Marosa" at the start of a document with other tokens than " Marosa" after a
    space: both forms are searched (a form ending with the other is dropped: it finds the same mentions)."""
    from tokenizers import Tokenizer

    from seethrough import build_corpus, build_index, open_corpus
    from seethrough.audit.facts import find_evidence, parse_questions

    rng = random.Random(5)
    names, cities = ["Bazomi", "Kelutra", "Oronde"], ["Marosa", "Tuvela", "Pinsk"]
    docs = []
    for _ in range(60):
        a, c = rng.choice(names), rng.choice(cities)
        docs.append(rng.choice([f"{a} was born in {c}.", f"{c} is where {a} lives.", f"{c} and more text here.",
                                f"Someone from {c} met nobody.", f"{a} sang."]))
    tokenizer = bpe_tokenizer(tmp_path / "bpe.json", docs, vocab=300)
    write_lines(tmp_path / "docs.jsonl", [{"text": d} for d in docs])
    build_corpus([tmp_path / "docs.jsonl"], tokenizer, tmp_path / "corpus")
    build_index(tmp_path / "corpus")
    index = open_corpus(tmp_path / "corpus")
    tok = Tokenizer.from_file(str(tokenizer))
    token_docs = [tok.encode(d, add_special_tokens=False).ids for d in docs]
    questions = parse_questions([{"id": f"{a}-{c}", "subject": a, "prompt": f"{a} was born in", "answer": c,
                                  "candidates": cities} for a in names for c in cities])
    for q, e in zip(questions, find_evidence(index, questions)):
        sf, af = forms_of(tok, q.subject), forms_of(tok, q.answer)
        assert len(af) == 2  # the two spellings differ in tokens
        kept = [f for f in af if not any(len(g) < len(f) and f[-len(g):] == g for g in af)]
        assert e.pair.answer_forms == kept
        assert e.pair.documents.tolist() == [d for d, seq in enumerate(token_docs) if together(seq, sf, af)]
    found_at_start = [d for d, text in enumerate(docs) if any(text.startswith(c) for c in cities)]
    assert found_at_start  # the no-space form is the one found there


def bpe_tokenizer(path, texts, vocab):
    from conftest import bpe_tokenizer as make

    return make(path, texts, vocab)


# ---- bad input -------------------------------------------------------------------------------------------

GOOD = {"id": "a", "subject": "p0", "prompt": "p0 was born in", "answer": "c1", "candidates": ["c1", "c2"]}


@pytest.mark.parametrize("lines,message", [
    ([{**GOOD, "candidates": []}], r"q\.jsonl:1: no candidates; give the answer set the model ranks"),
    ([{k: v for k, v in GOOD.items() if k != "candidates"}], r":1: no candidates"),
    ([GOOD, {**GOOD, "id": "b", "answer": "c5"}], r"q\.jsonl:2: the answer 'c5' is not among its candidates; add it"),
    ([GOOD, {**GOOD, "id": "b"}, {**GOOD}], r"q\.jsonl:3: id 'a' is already used on .*q\.jsonl:1; give every"),
    ([{k: v for k, v in GOOD.items() if k != "prompt"}], r":1: missing prompt; every question needs id, subject"),
    ([{**GOOD, "hop": []}], r":1: unknown field 'hop'; a question has"),
    ([{**GOOD, "format": "cot"}], r":1: format \"cot\" is not one of direct, chain"),
    ([{**GOOD, "candidates": ["c1", "c1"]}], r":1: candidate 'c1' is listed more than once"),
    ([{**GOOD, "hops": [{"subject": "p0", "answer": "k1"}, {"subject": "k2", "answer": "c1"}]}],
     r":1: hop 2 starts at 'k2', not where hop 1 ends \('k1'\)"),
    ([{**GOOD, "hops": [{"subject": "p0", "answer": "k1"}]}], r":1: the last hop ends at 'k1', not at the answer"),
    ([{**GOOD, "id": True}], r":1: id must be a non-empty string or an integer"),
    ([], r"holds no questions"),
])
def test_bad_questions_are_refused_naming_the_line_and_the_fix(tmp_path, lines, message):
    from seethrough.audit.facts import read_questions

    with pytest.raises(QueryError, match=message) as caught:
        read_questions(write_lines(tmp_path / "q.jsonl", lines))
    assert "\n" not in str(caught.value)


def test_unreadable_lines_name_their_line(tmp_path):
    from seethrough.audit.facts import read_questions

    (tmp_path / "q.jsonl").write_bytes(json.dumps(GOOD).encode() + b"\n\n{not json\n")
    with pytest.raises(QueryError, match=r"q\.jsonl:3: not valid JSON"):
        read_questions(tmp_path / "q.jsonl")
    (tmp_path / "q.jsonl").write_bytes(json.dumps(GOOD).encode() + b"\n\xff\n")
    with pytest.raises(QueryError, match=r"q\.jsonl:2: not UTF-8 text"):
        read_questions(tmp_path / "q.jsonl")


@pytest.mark.parametrize("field,value,message", [
    ("subject", "Zorg", r"q\.jsonl:1: subject 'Zorg' has words the corpus tokenizer does not know"),
    ("subject", "~~", r"q\.jsonl:1: subject '~~' maps to no tokens with the corpus tokenizer"),
    ("answer", "c1", None),
])
def test_entities_the_tokenizer_cannot_read_are_refused(world, tmp_path, field, value, message):
    from seethrough.audit.facts import find_evidence, read_questions

    line = {**GOOD, field: value, "prompt": "p0 was born in"}
    questions = read_questions(write_lines(tmp_path / "q.jsonl", [line]))
    if message is None:
        find_evidence(world["index"], questions)
        return
    with pytest.raises(QueryError, match=message + r".*; write it as the corpus spells it"):
        find_evidence(world["index"], questions)


def test_hop_and_candidate_entities_are_checked_too(world, tmp_path):
    from seethrough.audit.facts import find_evidence, read_questions

    hops = {**GOOD, "hops": [{"subject": "p0", "answer": "Zorg"}, {"subject": "Zorg", "answer": "c1"}]}
    with pytest.raises(QueryError, match=r":1: hop 1 answer 'Zorg' has words"):
        find_evidence(world["index"], read_questions(write_lines(tmp_path / "q.jsonl", [hops])))
    candidates = {**GOOD, "candidates": ["c1", "Zorg"]}
    with pytest.raises(QueryError, match=r":1: candidate 'Zorg' has words"):
        find_evidence(world["index"], read_questions(write_lines(tmp_path / "q.jsonl", [candidates])))


def test_settings_out_of_range_are_refused():
    from seethrough.audit.facts import FactsSettings

    for kwargs, message in (({"window": 0}, "--window 0: give at least 1 token"), ({"window": -3}, "--window -3"),
                            ({"max_documents": -1}, "--max-documents -1"),
                            ({"max_new_tokens": 0}, "--max-new-tokens 0"), ({"control": " "}, "--control")):
        with pytest.raises(ConfigError, match=message):
            FactsSettings(**kwargs)


def test_an_unknown_control_group_and_another_corpus_are_refused(world, tmp_path):
    from seethrough import build_corpus, build_index, open_corpus
    from seethrough.audit.facts import FactsSettings, audit_facts, read_questions

    questions = read_questions(world["root"] / "questions.jsonl")
    with pytest.raises(ConfigError, match=r"--control Z: no question is in group 'Z'; the groups are C, D, E, S"):
        audit_facts(world["root"] / "run", world["index"], questions, FactsSettings(control="Z"))
    write_lines(tmp_path / "d.jsonl", [{"text": d} for d in world["docs"][:50]])
    build_corpus([tmp_path / "d.jsonl"], world["root"] / "tokenizer.json", tmp_path / "other")
    build_index(tmp_path / "other")
    with pytest.raises(ModelError, match="is not the corpus run .* was trained on"):
        audit_facts(world["root"] / "run", open_corpus(tmp_path / "other"), questions)


# ---- the command -----------------------------------------------------------------------------------------

def test_the_command_writes_the_table_summary_and_plots_and_json_lines(world, tmp_path):
    from typer.testing import CliRunner

    from seethrough.cli.app import app

    root = world["root"]
    out = tmp_path / "out"
    done = CliRunner().invoke(app, ["facts", str(root / "run"), "--corpus", str(root / "corpus"), "--questions",
                                    str(root / "questions.jsonl"), "--checkpoints", "8,16", "--control", "C",
                                    "--max-documents", "2", "--out", str(out), "--json", "--threads", "1"])
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 2 * len(world["questions"])
    issue = {"id", "checkpoint", "category", "predicted", "correct", "rank", "p_answer", "evidence", "hops"}
    for line in lines:
        assert issue <= set(line)
        assert {"count", "documents", "first_step", "last_step", "same_row"} <= set(line["evidence"])
        assert len(line["evidence"]["documents"]) == min(2, line["evidence"]["count"])
        for hop in line["hops"]:
            assert {"subject", "answer", "stated", "count", "documents"} <= set(hop)
    assert [line["checkpoint"] for line in lines[:: len(world["questions"])]] == ["step-8", "step-16"]
    for name in ("facts.parquet", "facts.csv", "summary.json", "accuracy_by_step.png", "accuracy_by_category.png",
                 "accuracy_by_exposures.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "accuracy_by_step.png").read_bytes()[:4] == b"\x89PNG"
    import pyarrow.parquet as pq

    table = pq.read_table(out / "facts.parquet").to_pylist()
    assert len(table) == len(lines) and {r["id"] for r in table} == {str(q["id"]) for q in world["questions"]}
    summary = json.loads((out / "summary.json").read_text())
    assert [c["step"] for c in summary["checkpoints"]] == [8, 16]
    assert sum(summary["categories"].values()) == len(world["questions"])
    assert summary["first_learned"]["items"] and summary["checkpoints"][0]["by_exposures"]


def test_the_command_refuses_bad_input_in_one_line_with_exit_2(world, tmp_path):
    root = world["root"]
    bad = write_lines(tmp_path / "q.jsonl", [{**GOOD, "candidates": ["c2"]}])
    out = tmp_path / "out"
    for args, message in (([str(bad)], "q.jsonl:1: the answer 'c1' is not among its candidates"),
                          ([str(root / "questions.jsonl"), "--window", "0"], "--window 0: give at least 1 token"),
                          ([str(root / "questions.jsonl"), "--control", "nobody"], "--control nobody: no question")):
        done = subprocess.run([sys.executable, "-m", "seethrough", "facts", str(root / "run"), "--corpus",
                               str(root / "corpus"), "--out", str(out), "--questions", *args],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_flags_without_effect_are_refused(world, tmp_path):
    from typer.testing import CliRunner

    from seethrough.cli.app import app

    root = world["root"]
    direct = write_lines(tmp_path / "direct.jsonl", [GOOD])
    chain = write_lines(tmp_path / "chain.jsonl", [{**GOOD, "format": "chain"}])
    base = ["facts", str(root / "run"), "--corpus", str(root / "corpus"), "--questions"]
    for args, message in (([str(direct), "--max-documents", "3"], "--max-documents has no effect with the terminal"),
                          ([str(direct), "--max-new-tokens", "4", "--json"], "--max-new-tokens has no effect with "
                                                                              "questions all of format direct"),
                          ([str(chain), "--delimiter", ":", "--json"], "--delimiter has no effect with questions all "
                                                                        "of format chain")):
        done = CliRunner().invoke(app, base + args)
        assert isinstance(done.exception, QueryError) and message in str(done.exception), done.output
