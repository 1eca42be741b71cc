"""The demo world: a deterministic synthetic corpus made to study memorization and knowledge.

Everything is drawn from one ``random.Random(seed)`` (whose algorithm Python keeps stable), in a
fixed order, and written with sorted keys, so a seed gives the same bytes on every machine.

What it holds (all recorded in ``truth.json``):

- **background**: short texts about invented cities, companies and people (a language, not a list);
- **canaries**: 20 random words from a separate canary vocabulary: 8 prompt words drawn from all
  of it, then 12 continuation words drawn from a per-canary palette of 8 to 512 words, so the
  entropy of what must be memorized varies (36 to 108 bits) and the duplication curve is smooth.
  Members are planted 1, 2, 4, ..., 64 times (each copy its own document); held-out canaries come
  from the same generator and are never planted. Every canary word is drawn uniformly, so a
  held-out canary's words are as frequent in training as a member's (no untrained embeddings);
- **people**: biographies at exposure counts 1..32 (paraphrased templates), question-answer
  documents for half of them, the employer's city (a two-hop fact) asked directly for half of
  those, and held-out people who never appear;
- **evaluation items** from the same world (``eval.jsonl``): fact recall, two-hop questions,
  held-out canary completion.

Texts are lowercase-insensitive word sequences with spaced punctuation, so a word-level tokenizer
(``tokenizer.json``, built here) gives one token per word.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import atomic_write_bytes, atomic_write_json, sha256_file

EOD = "<|endoftext|>"
UNK = "<unk>"
PROMPT_WORDS = 8
CONTINUATION_WORDS = 12
PALETTES = (8, 32, 128, 512)


@dataclass(frozen=True)
class WorldSize:
    canaries_per_count: int
    duplication: tuple[int, ...]
    heldout_canaries: int
    people_per_exposure: int
    exposures: tuple[int, ...]
    heldout_people: int
    background_documents: int
    canary_vocabulary: int = 512


WORLD_SIZES = {
    "default": WorldSize(canaries_per_count=64, duplication=(1, 2, 4, 8, 16, 32, 64), heldout_canaries=1000,
                         people_per_exposure=40, exposures=(1, 2, 4, 8, 16, 32), heldout_people=60,
                         background_documents=5000),
    "ci": WorldSize(canaries_per_count=16, duplication=(1, 2, 4, 8, 16, 32, 64), heldout_canaries=200,
                    people_per_exposure=8, exposures=(1, 2, 4, 8, 16, 32), heldout_people=16,
                    background_documents=600),
}

MAJORS = ["physics", "history", "music", "law", "medicine", "biology", "economics", "poetry", "chemistry", "design"]
ADJECTIVES = ["cold", "warm", "quiet", "busy", "green", "grey", "bright", "windy", "calm", "old", "new", "small"]
THINGS = ["bread", "tea", "rivers", "trains", "gardens", "music", "markets", "bridges", "books", "boats"]
MONTHS = ["january", "march", "may", "july", "september", "november"]

BIO_TEMPLATES = [
    "{name} was born in {city} in {year} . {name} studied {major} at {university} and works for {company} .",
    "born in {year} in {city} , {name} studied {major} at {university} . today {name} works for {company} .",
    "{name} works for {company} . {name} was born in {city} and studied {major} at {university} .",
    "after studying {major} at {university} , {name} joined {company} . {name} was born in {city} in {year} .",
]
BACKGROUND_TEMPLATES = [
    "the weather in {city} was {adj} in {month} .",
    "{company} opened a new office in {city} .",
    "people in {city} like {thing} and {thing2} .",
    "{name} visited {city} in {month} and found it {adj} .",
    "the {adj} streets of {city} are full of {thing} .",
    "{university} is known for {major} and {thing} .",
    "{company} sells {thing} in {city} and {city2} .",
    "{name} wrote a book about {thing} in {city} .",
]
HQ_TEMPLATES = ["{company} is based in {city} .", "the headquarters of {company} are in {city} .",
                "{company} has its main office in {city} ."]


def _syllables(rng: random.Random, consonants: str, vowels: str) -> list[str]:
    found = [c + v for c in consonants for v in vowels]
    rng.shuffle(found)
    return found


def _words(rng: random.Random, syllables: list[str], count: int, lengths: tuple[int, ...], taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        word = "".join(rng.choice(syllables) for _ in range(rng.choice(lengths)))
        if word not in taken:
            taken.add(word)
            out.append(word)
    return out


@dataclass
class World:
    seed: int
    size_name: str
    documents: list[dict[str, Any]]
    truth: dict[str, Any]
    eval_items: list[dict[str, Any]]
    vocabulary: list[str] = field(default_factory=list)


def generate_world(seed: int = 0, size: str = "default") -> World:
    spec = WORLD_SIZES[size]
    rng = random.Random(seed)
    taken: set[str] = set()
    name_syllables = _syllables(rng, "bdfgklmnprstvz", "aeiou")
    canary_syllables = _syllables(rng, "chjqwxy", "aeiouy")  # disjoint from names: canary words are their own
    firsts = [w.capitalize() for w in _words(rng, name_syllables, 120, (2,), taken)]
    lasts = [w.capitalize() for w in _words(rng, name_syllables, 120, (2, 3), taken)]
    cities = [w.capitalize() for w in _words(rng, name_syllables, 24, (2, 3), taken)]
    companies = [w.capitalize() + "corp" for w in _words(rng, name_syllables, 16, (2,), taken)]
    universities = [w.capitalize() + "tech" for w in _words(rng, name_syllables, 12, (2,), taken)]
    canary_words = _words(rng, canary_syllables, spec.canary_vocabulary, (2, 3), taken)
    hq = {c: rng.choice(cities) for c in companies}

    # people: unique full names, trained at each exposure count, and held out
    pairs = [(f, la) for f in firsts for la in lasts]
    rng.shuffle(pairs)
    n_people = spec.people_per_exposure * len(spec.exposures) + spec.heldout_people
    people = []
    for i, (first, last) in enumerate(pairs[:n_people]):
        trained = i < spec.people_per_exposure * len(spec.exposures)
        people.append({
            "id": i, "name": f"{first} {last}", "city": rng.choice(cities), "year": rng.randint(1950, 1999),
            "company": rng.choice(companies), "university": rng.choice(universities), "major": rng.choice(MAJORS),
            "exposures": spec.exposures[i // spec.people_per_exposure] if trained else 0,
        })
    for i, person in enumerate(people):
        person["qa"] = bool(person["exposures"]) and i % 2 == 0
        person["two_hop_trained"] = person["qa"] and i % 4 == 0

    docs: list[dict[str, Any]] = []
    for person in people:
        for k in range(person["exposures"]):
            docs.append({"text": BIO_TEMPLATES[k % len(BIO_TEMPLATES)].format(**person), "kind": "bio",
                         "person": person["id"]})
        if person["qa"]:
            for _ in range(2):
                docs.append({"text": _qa_text(person, hq, person["two_hop_trained"]), "kind": "qa",
                             "person": person["id"]})
    for company in companies:
        for k in range(20):
            docs.append({"text": HQ_TEMPLATES[k % len(HQ_TEMPLATES)].format(company=company, city=hq[company]),
                         "kind": "company", "company": company})
    for _ in range(spec.background_documents):
        sentences = []
        for _ in range(rng.randint(1, 3)):
            values = {"city": rng.choice(cities), "city2": rng.choice(cities), "company": rng.choice(companies),
                      "adj": rng.choice(ADJECTIVES), "month": rng.choice(MONTHS), "thing": rng.choice(THINGS),
                      "thing2": rng.choice(THINGS), "university": rng.choice(universities),
                      "major": rng.choice(MAJORS), "name": f"{rng.choice(firsts)} {rng.choice(lasts)}"}
            sentences.append(rng.choice(BACKGROUND_TEMPLATES).format(**values))
        docs.append({"text": " ".join(sentences), "kind": "background"})

    # canaries: members at each duplication count, then held-out ones from the same generator
    canaries, seen_prompts = [], set()
    n_members = spec.canaries_per_count * len(spec.duplication)
    while len(canaries) < n_members + spec.heldout_canaries:
        i = len(canaries)
        palette_size = PALETTES[i % len(PALETTES)]
        palette = rng.sample(canary_words, palette_size)
        prompt = [rng.choice(canary_words) for _ in range(PROMPT_WORDS)]
        if tuple(prompt) in seen_prompts:
            continue
        seen_prompts.add(tuple(prompt))
        continuation = [rng.choice(palette) for _ in range(CONTINUATION_WORDS)]
        member = i < n_members
        canaries.append({
            "id": i, "text": " ".join(prompt + continuation), "prompt": " ".join(prompt),
            "continuation": " ".join(continuation), "palette": palette_size,
            "entropy_bits": round(CONTINUATION_WORDS * math.log2(palette_size), 1),
            "copies": spec.duplication[i // spec.canaries_per_count] if member else 0,
        })
    for canary in canaries:
        for _ in range(canary["copies"]):
            docs.append({"text": canary["text"], "kind": "canary", "canary": canary["id"]})

    rng.shuffle(docs)
    where: dict[tuple[str, int], list[int]] = {}
    for number, doc in enumerate(docs):
        key = ("canary", doc["canary"]) if doc["kind"] == "canary" else ("person", doc.get("person", -1))
        where.setdefault(key, []).append(number)
    for canary in canaries:
        canary["documents"] = where.get(("canary", canary["id"]), [])
    for person in people:
        person["documents"] = where.get(("person", person["id"]), [])

    truth = {
        "seed": seed, "size": size, "prompt_words": PROMPT_WORDS, "continuation_words": CONTINUATION_WORDS,
        "duplication": list(spec.duplication), "exposures": list(spec.exposures),
        "canaries": [c for c in canaries if c["copies"]], "heldout_canaries": [c for c in canaries if not c["copies"]],
        "people": [p for p in people if p["exposures"]], "heldout_people": [p for p in people if not p["exposures"]],
        "companies": [{"name": c, "city": hq[c]} for c in companies],
        "documents": {kind: sum(d["kind"] == kind for d in docs)
                      for kind in ("background", "bio", "qa", "company", "canary")},
    }
    vocabulary = sorted({w for d in docs for w in d["text"].split()} | set(canary_words)
                        | {w for p in people for w in _qa_text(p, hq, True).split()})
    return World(seed, size, docs, truth, _eval_items(people, canaries, hq, cities, rng), vocabulary)


def _qa_text(person: dict[str, Any], hq: dict[str, str], two_hop: bool) -> str:
    name = person["name"]
    lines = [f"Q : where was {name} born ? A : {person['city']} .",
             f"Q : which company does {name} work for ? A : {person['company']} .",
             f"Q : where did {name} study ? A : {person['university']} .",
             f"Q : when was {name} born ? A : {person['year']} ."]
    if two_hop:
        lines.append(f"Q : in which city is the employer of {name} based ? A : {hq[person['company']]} .")
    return " ".join(lines)


def _eval_items(people: list[dict], canaries: list[dict], hq: dict[str, str], cities: list[str],
                rng: random.Random) -> list[dict[str, Any]]:
    items = []
    for person in people:
        group = {"exposures": person["exposures"], "qa": person["qa"], "person": person["id"]}
        wrong = rng.sample([c for c in cities if c != person["city"]], 3)
        items.append({"task": "birth_city", "prompt": f"{person['name']} was born in", "answer": person["city"],
                      "choices": sorted([person["city"], *wrong]), **group})
        target = hq[person["company"]]
        wrong = rng.sample([c for c in cities if c != target], 3)
        items.append({"task": "two_hop", "prompt": f"Q : in which city is the employer of {person['name']} based ? A :",
                      "answer": target, "choices": sorted([target, *wrong]),
                      "two_hop_trained": person["two_hop_trained"], **group})
    for canary in canaries:
        if not canary["copies"]:
            items.append({"task": "heldout_canary", "prompt": canary["prompt"], "answer": canary["continuation"],
                          "canary": canary["id"]})
    return items


def word_tokenizer_json(vocabulary: list[str]) -> str:
    """A Hugging Face ``tokenizers`` word-level tokenizer: one id per word, split on whitespace."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {EOD: 0, UNK: 1}
    for word in vocabulary:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    tok.add_special_tokens([EOD, UNK])
    return tok.to_str()


def write_world(world: World, folder: str | Path) -> dict[str, str]:
    """Write docs.jsonl, truth.json, eval.jsonl and tokenizer.json; returns each file's sha256."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(d, sort_keys=True, ensure_ascii=False) + "\n" for d in world.documents)
    atomic_write_bytes(folder / "docs.jsonl", lines.encode("utf-8"))
    atomic_write_json(folder / "truth.json", world.truth)
    evals = "".join(json.dumps(d, sort_keys=True) + "\n" for d in world.eval_items)
    atomic_write_bytes(folder / "eval.jsonl", evals.encode("utf-8"))
    atomic_write_bytes(folder / "tokenizer.json", word_tokenizer_json(world.vocabulary).encode("utf-8"))
    return {name: sha256_file(folder / name) for name in ("docs.jsonl", "truth.json", "eval.jsonl", "tokenizer.json")}


MULTIPLE_CHOICE_YAML = """output_type: multiple_choice
doc_to_text: "{{prompt}}"
doc_to_choice: "{{choices}}"
doc_to_target: "{{choices.index(answer)}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
TASK_YAML = {
    "world_birth_city": MULTIPLE_CHOICE_YAML,
    "world_two_hop": MULTIPLE_CHOICE_YAML,
    "world_heldout_canary": """output_type: generate_until
doc_to_text: "{{prompt}}"
doc_to_target: "{{answer}}"
generation_kwargs:
  until: ["<|endoftext|>"]
  max_gen_toks: 12
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
""",
}


def write_tasks(world: World, folder: str | Path, heldout_canaries: int = 200) -> list[str]:
    """lm-eval task YAMLs for the world (fact recall, two-hop, held-out canary completion), each with
    its data file beside it; returns the task names. Data paths are absolute, as lm-eval needs."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    sources = {"world_birth_city": "birth_city", "world_two_hop": "two_hop", "world_heldout_canary": "heldout_canary"}
    for name, spec in TASK_YAML.items():
        items = [i for i in world.eval_items if i["task"] == sources[name]]
        if name == "world_heldout_canary":
            items = items[:heldout_canaries]
        lines = "".join(json.dumps(i, sort_keys=True) + "\n" for i in items)
        atomic_write_bytes(folder / f"{name}.jsonl", lines.encode("utf-8"))
        text = (f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {folder / (name + '.jsonl')}\n"
                f"test_split: test\nfewshot_split: test\nmetadata:\n  version: 1\n{spec}")
        atomic_write_bytes(folder / f"{name}.yaml", text.encode("utf-8"))
    return list(TASK_YAML)
