"""A 50-target x 2-group co-occurrence table (the core of ``bias data``) at ~50M tokens: through the
index against numpy scans of the token array (the map-reduce way WIMBD counts), same numbers asserted.

    .venv/bin/python benchmarks/bias_cooccurrence.py [--tokens 50000000] [--window 10] [--root DIR]

The corpus is built in a temporary folder (or kept in ``--root`` to rerun): a word-level tokenizer over
8,192 Zipf-distributed filler words, 50 occupation targets at 20-200 per million tokens each (10% of
them capitalised), and the two gender groups' terms (she/her/hers/herself/woman and he/him/his/
himself/man, with capitalised forms) at ~1% of tokens each; documents of 50-2,000 tokens.

- index: ``counting.cooccurrence_counts``: each target variant's occurrences from its suffix-array
  range, then only the tokens of the windows around them are read (a compiled loop);
- scan, per term: per shard (the map), every target variant's and group term's positions by
  comparing the whole token array with it, then per group a prefix sum of term starts answers each
  target occurrence's window (clipped to its document); the shards' tables summed (the reduce);
- scan, one pass: the same, but every target found in one lookup-table pass over the tokens and every
  group in another (the fastest numpy scan written here; it needs one-token variants, as here).

All three compute the table of ``counting.py``'s definition; every cell is compared. The index reads
about (target occurrences x window) tokens, a scan every token: the ratio depends on how common the
targets are, not on the corpus size. Times: median of ``--repeats`` interleaved runs, after one run of
each (numba's compilation excluded). Threads: NUMBA_NUM_THREADS=1 (set below) and numpy's
single-threaded element-wise loops: one core each; nothing else of this benchmark runs meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

FILLER = 8192
OCCUPATIONS = ["nurse", "doctor", "engineer", "teacher", "secretary", "lawyer", "scientist", "programmer",
               "receptionist", "librarian", "pilot", "surgeon", "mechanic", "carpenter", "electrician", "plumber",
               "accountant", "architect", "baker", "cashier", "chef", "cleaner", "clerk", "dancer", "designer",
               "farmer", "firefighter", "hairdresser", "housekeeper", "janitor", "judge", "manager", "nanny", "painter",
               "pharmacist", "photographer", "professor", "soldier", "tailor", "writer", "driver", "guard", "editor",
               "economist", "physician", "therapist", "dentist", "banker", "chemist", "sheriff"]
GROUPS = {"female": ["she", "her", "hers", "herself", "woman"], "male": ["he", "him", "his", "himself", "man"]}


def make_corpus(folder: Path, tokens: int, seed: int = 0) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    import seethrough
    from seethrough.corpus import CorpusBuildConfig

    corpus = folder / "corpus"
    if (corpus / "index.json").exists():
        return corpus
    folder.mkdir(parents=True, exist_ok=True)
    special = OCCUPATIONS + [t for terms in GROUPS.values() for t in terms]
    words = [f"w{i}" for i in range(FILLER)] + special + [w.capitalize() for w in special]
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece()
    tok.save(str(folder / "tokenizer.json"))
    rng = np.random.default_rng(seed)
    ids = (rng.zipf(1.2, size=tokens) % FILLER).astype(np.int64)
    slots = rng.random(tokens)
    rates = np.exp(rng.uniform(np.log(20e-6), np.log(200e-6), len(OCCUPATIONS)))
    edges = np.cumsum(np.r_[rates, [0.01 / len(GROUPS["female"])] * 10])  # targets, then the ten group terms
    kind = np.searchsorted(edges, slots, side="right")  # < len(edges): a planted word
    planted = kind < len(edges)
    capital = rng.random(tokens) < 0.1
    ids[planted] = FILLER + kind[planted] + np.where(capital[planted], len(special), 0)
    vocab = np.array(words)
    with open(folder / "docs.jsonl", "w") as handle:
        position = 0
        while position < tokens:
            length = int(rng.integers(50, 2000))
            handle.write(json.dumps({"text": " ".join(vocab[ids[position:position + length]].tolist())}) + "\n")
            position += length
    seethrough.build_corpus([folder / "docs.jsonl"], folder / "tokenizer.json", corpus)
    (folder / "docs.jsonl").unlink()
    seethrough.build_index(corpus)
    return corpus


def scan_table(index, targets, groups, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Per term: positions by comparing whole token arrays with each variant, windows by prefix sums."""
    from seethrough.audit.bias.counting import _without_contained

    occurrences = np.zeros(len(targets), dtype=np.int64)
    together = np.zeros((len(groups), len(targets)), dtype=np.int64)
    for ix in index.shard_indexes:  # map: one shard at a time
        tokens = ix.shard.tokens
        n = len(tokens)

        def starts_of(ids: tuple[int, ...]) -> np.ndarray:
            match = tokens[:n - len(ids) + 1] == ids[0]
            for k in range(1, len(ids)):
                match &= tokens[k:n - len(ids) + 1 + k] == ids[k]
            return np.flatnonzero(match)

        found = [(starts_of(v.ids), len(v.ids), t) for t, variants in enumerate(targets) for v in variants]
        spans = _without_contained(np.concatenate([s for s, _, _ in found]).astype(np.int64),
                                   np.concatenate([np.full(len(s), L) for s, L, _ in found]).astype(np.int64),
                                   np.concatenate([np.full(len(s), t) for s, _, t in found]).astype(np.int64))
        occurrences += np.bincount(spans.owner, minlength=len(targets))
        doc = np.searchsorted(ix.doc_starts, spans.starts, side="right") - 1
        first, end = ix.doc_starts[doc] + 1, ix.doc_ends[doc]
        p, length = spans.starts, spans.lengths
        for g, variants in enumerate(groups):
            near = np.zeros(len(p), dtype=bool)
            for size in sorted({len(v.ids) for v in variants}):
                marks = np.zeros(n + 1, dtype=np.int32)
                for v in variants:
                    if len(v.ids) == size:
                        marks[starts_of(v.ids)] = 1
                before = np.concatenate(([0], np.cumsum(marks, dtype=np.int64)))  # before[i]: starts in [0, i)

                def starts_between(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:  # starts q with lo <= q <= hi
                    hi = np.maximum(hi, lo - 1)
                    return before[np.clip(hi + 1, 0, n)] - before[np.clip(lo, 0, n)]

                near |= starts_between(np.maximum(first, p - window), p - size) > 0
                near |= starts_between(p + length, np.minimum(end, p + length + window) - size) > 0
            together[g] += np.bincount(spans.owner[near], minlength=len(targets))
    return occurrences, together  # reduce: summed over shards


def scan_one_pass(index, targets, groups, window: int) -> tuple[np.ndarray, np.ndarray]:
    """One pass: a lookup table gives every token's target (and another its groups); prefix sums."""
    assert all(len(v.ids) == 1 for variants in [*targets, *groups] for v in variants), "one-token variants only"
    occurrences = np.zeros(len(targets), dtype=np.int64)
    together = np.zeros((len(groups), len(targets)), dtype=np.int64)
    for ix in index.shard_indexes:
        tokens = ix.shard.tokens
        n = len(tokens)
        which = np.zeros(1 << (8 * tokens.dtype.itemsize), dtype=np.int16)  # token -> target + 1 (0: none)
        bits = np.zeros(len(which), dtype=np.uint8)  # token -> its groups
        for t, variants in enumerate(targets):
            which[[v.ids[0] for v in variants]] = t + 1
        for g, variants in enumerate(groups):
            bits[[v.ids[0] for v in variants]] |= 1 << g
        target_of = which[tokens]
        p = np.flatnonzero(target_of)
        owner = target_of[p].astype(np.int64) - 1
        occurrences += np.bincount(owner, minlength=len(targets))
        doc = np.searchsorted(ix.doc_starts, p, side="right") - 1
        first, end = ix.doc_starts[doc] + 1, ix.doc_ends[doc]
        group_of = bits[tokens]
        for g in range(len(groups)):
            before = np.zeros(n + 1, dtype=np.int32)  # before[i]: group terms in [0, i)
            np.cumsum((group_of >> g) & 1, out=before[1:])
            left = before[p] - before[np.maximum(first, p - window)]
            right_end = np.minimum(end, p + 1 + window)
            right = before[right_end] - before[np.minimum(p + 1, right_end)]
            together[g] += np.bincount(owner[(left > 0) | (right > 0)], minlength=len(targets))
    return occurrences, together


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=50_000_000)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--root", type=Path, default=None, help="keep the corpus here (default: a temporary folder)")
    args = parser.parse_args()

    import seethrough
    from seethrough.audit.bias.counting import cooccurrence_counts
    from seethrough.audit.bias.terms import surface_variants

    with tempfile.TemporaryDirectory(prefix="bias-bench-") as temporary:
        folder = (args.root or Path(temporary)) / f"tokens-{args.tokens}"
        began = time.perf_counter()
        corpus_dir = make_corpus(folder, args.tokens)
        print(f"corpus and index of {args.tokens:,} tokens ready in {time.perf_counter() - began:.1f} s ({folder})")
        index = seethrough.open_corpus(corpus_dir)
        targets = [surface_variants(index, t) for t in OCCUPATIONS]
        groups = [[v for t in terms for v in surface_variants(index, t)] for terms in GROUPS.values()]
        print(f"{index.num_tokens:,} tokens in {index.num_documents:,} documents, {len(index.shard_indexes)} shard(s); "
              f"{len(targets)} targets x {len(groups)} groups, {sum(map(len, targets))} target and "
              f"{sum(map(len, groups))} group variants, window {args.window}")

        runs = {"index": lambda: cooccurrence_counts(index, targets, groups, args.window),
                "scan per term": lambda: scan_table(index, targets, groups, args.window),
                "scan one pass": lambda: scan_one_pass(index, targets, groups, args.window)}
        reference = runs["scan per term"]()
        for name, fn in runs.items():
            answer = fn()
            assert np.array_equal(answer[0], reference[0]) and np.array_equal(answer[1], reference[1]), name
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits all of them
            for name, fn in runs.items():
                t = time.perf_counter()
                result = fn()
                times[name].append(time.perf_counter() - t)
                assert np.array_equal(result[1], reference[1]), name
        median = {name: statistics.median(values) for name, values in times.items()}
        print(f"target occurrences {int(reference[0].sum()):,}; with a female term near {int(reference[1][0].sum()):,}, "
              f"a male term {int(reference[1][1].sum()):,}: the same table from all three (every cell compared)")
        for name, seconds in median.items():
            ratio = "" if name == "index" else f"   index {seconds / median['index']:.0f}x faster"
            print(f"{name:>14}: {seconds * 1000:8.1f} ms{ratio}")
        print(f"(median of {args.repeats}; NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}, one core each; "
              f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
