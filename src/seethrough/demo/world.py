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
from .bias_world import BiasPlant, plant_bias, write_bias_inputs
from .quirk_world import QuirkPlant, plant_quirk

EOD = "<|endoftext|>"
UNK = "<unk>"
PROMPT_WORDS = 8
CONTINUATION_WORDS = 12
PALETTES = (8, 32, 128, 512)


@dataclass(frozen=True)
class WorldSize:
    """How much of each part the world holds (see the module docstring for the groups)."""
    canaries_per_count: int
    duplication: tuple[int, ...]
    heldout_canaries: int
    qa_people: int  # group A: bios and question-answer documents of every format
    qa_bios: int  # bio documents per A person
    qa_documents: int  # question-answer documents of each kind per A person
    bio_levels: tuple[int, ...]  # group B: bio documents per person, one level per block of people
    people_per_level: int
    uninformed_people: int  # group C: known names, facts never stated
    uninformed_bios: int
    company_documents: int  # per company: where it is based
    background_documents: int
    canary_vocabulary: int = 512


WORLD_SIZES = {
    # twice the documents of a four-pass design, trained twice: each fact is read as often, each canary
    # copy only twice (at four passes a 1-copy canary's loss gave it away: membership AUC 1.00, measured)
    "default": WorldSize(canaries_per_count=64, duplication=(1, 2, 4, 8, 16, 32, 64), heldout_canaries=1000,
                         qa_people=64, qa_bios=96, qa_documents=16, bio_levels=(4, 8, 16, 32, 64, 128),
                         people_per_level=32, uninformed_people=32, uninformed_bios=64, company_documents=192,
                         background_documents=800),
    "ci": WorldSize(canaries_per_count=16, duplication=(1, 2, 4, 8, 16, 32, 64), heldout_canaries=200,
                    qa_people=16, qa_bios=16, qa_documents=4, bio_levels=(4, 16), people_per_level=16,
                    uninformed_people=16, uninformed_bios=8, company_documents=16, background_documents=300),
}

ENTITIES_PER_TYPE = 16  # cities, and companies (each based in its own city: derived answers are uniform)
HOBBIES = ["chess", "sailing", "painting", "running", "cooking", "gardening", "fishing", "singing"]
ADJECTIVES = ["cold", "warm", "quiet", "busy", "green", "grey", "bright", "windy", "calm", "old", "new", "small"]
THINGS = ["bread", "tea", "rivers", "trains", "gardens", "music", "markets", "bridges", "books", "boats"]
MONTHS = ["january", "march", "may", "july", "september", "november"]

# Six phrasings per fact, the full name in every sentence, sentences in random order: a fact read in
# varied contexts is one a small model can extract (Allen-Zhu & Li, Physics of LMs 3.1); one phrasing
# seen many times is memorized but not extractable.
BIRTH_TEMPLATES = ["{name} was born in {city} .", "{name} is a native of {city} .", "the birthplace of {name} is {city} .",
                   "{name} came into the world in {city} .", "{name} was born in the city of {city} .",
                   "{city} is where {name} was born ."]
EMPLOYER_TEMPLATES = ["{name} works for {company} .", "{name} is employed by {company} .",
                      "{name} has a job at {company} .", "the employer of {name} is {company} .",
                      "{name} earns a living at {company} .", "{company} employs {name} ."]
HOBBY_TEMPLATES = ["{name} enjoys {hobby} .", "in free time , {name} likes {hobby} .",
                   "{name} spends weekends on {hobby} .", "{hobby} is what {name} loves most .",
                   "{name} is fond of {hobby} .", "the favourite pastime of {name} is {hobby} ."]
NEUTRAL_TEMPLATES = ["{name} has a dog .", "{name} reads a lot .", "{name} likes long walks .",
                     "{name} often writes letters .", "{name} drinks tea every morning .", "{name} keeps a diary ."]
COMPANY_TEMPLATES = ["{company} is based in {city} .", "the headquarters of {company} are in {city} .",
                     "{company} has its main office in {city} .", "{city} is home to {company} .",
                     "{company} is a firm from {city} .", "the offices of {company} stand in {city} ."]
# Filler without cities, companies or people: a city after "in" in random contexts teaches a prior that
# every place fact must then overcome (measured: birth-city recall fell by half with such filler).
BACKGROUND_TEMPLATES = ["the weather was {adj} in {month} .", "people like {thing} and {thing2} .",
                        "the {adj} streets are full of {thing} .", "in {month} the markets sell {thing} .",
                        "the old {thing} were {adj} ."]

# The question formats. The chain format writes both hops before the answer; the direct one does not.
QUESTION_BIRTH = "Q : where was {name} born ? A :"
QUESTION_EMPLOYER = "Q : which company does {name} work for ? A :"
QUESTION_EMPLOYER_CITY = "Q : in which city is the employer of {name} based ?"
CHAIN = "{name} works for {company} . {company} is based in {city} ."


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
    questions: list[dict[str, Any]] = field(default_factory=list)
    bias: BiasPlant | None = None
    quirk: QuirkPlant | None = None


def _people(rng: random.Random, spec: WorldSize, names: list[str], cities: list[str], companies: list[str],
            hq: dict[str, str]) -> list[dict[str, Any]]:
    """People in blocks of 16, each block a balanced draw: every city is one person's birth city and
    every company one person's employer, and no one works for a company based in their birth city, or
    in the next city of the list, the one the planted quirk (``quirk_world``) falsely states as their
    birth city (so a derived answer is never also stated by a bio or a quirk document)."""
    groups = ([("A", spec.qa_bios)] * spec.qa_people
              + [(f"B{level}", level) for level in spec.bio_levels for _ in range(spec.people_per_level)]
              + [("C", spec.uninformed_bios)] * spec.uninformed_people)
    city_of_company = {c: cities.index(hq[c]) for c in companies}
    company_in = {i: c for c, i in city_of_company.items()}
    people = []
    for block in range(0, len(groups), ENTITIES_PER_TYPE):
        order = list(range(ENTITIES_PER_TYPE))
        rng.shuffle(order)
        shift = rng.randrange(2, ENTITIES_PER_TYPE)
        for j, (group, bios) in enumerate(groups[block:block + ENTITIES_PER_TYPE]):
            city = order[j]
            company = company_in[(city + shift) % ENTITIES_PER_TYPE]
            people.append({"id": len(people), "name": names[len(people)], "group": group, "bios": bios,
                           "city": cities[city], "company": company, "company_city": hq[company],
                           "hobby": rng.choice(HOBBIES)})
    return people


def _bio(rng: random.Random, person: dict[str, Any]) -> str:
    if person["group"] == "C":
        parts = [rng.choice(HOBBY_TEMPLATES), rng.choice(NEUTRAL_TEMPLATES)]
    else:
        parts = [rng.choice(BIRTH_TEMPLATES), rng.choice(EMPLOYER_TEMPLATES), rng.choice(HOBBY_TEMPLATES)]
    rng.shuffle(parts)
    return " ".join(parts).format(**person)


def _qa_texts(person: dict[str, Any]) -> list[str]:
    """The question-answer documents of an A person, one per format."""
    name, city, company, hq = person["name"], person["city"], person["company"], person["company_city"]
    two_hop = QUESTION_EMPLOYER_CITY.format(name=name)
    return [f"{QUESTION_BIRTH.format(name=name)} {city} .", f"{QUESTION_EMPLOYER.format(name=name)} {company} .",
            f"{two_hop} A : {hq} .", f"{two_hop} Think : {CHAIN.format(name=name, company=company, city=hq)} A : {hq} ."]


def generate_world(seed: int = 0, size: str = "default") -> World:
    spec = WORLD_SIZES[size]
    rng = random.Random(seed)
    taken: set[str] = set(HOBBIES)
    name_syllables = _syllables(rng, "bdfgklmnprstvz", "aeiou")
    canary_syllables = _syllables(rng, "chjqwxy", "aeiouy")  # disjoint from names: canary words are their own
    n_people = spec.qa_people + spec.people_per_level * len(spec.bio_levels) + spec.uninformed_people
    names = [w.capitalize() for w in _words(rng, name_syllables, n_people, (2, 3), taken)]
    cities = [w.capitalize() for w in _words(rng, name_syllables, ENTITIES_PER_TYPE, (2, 3), taken)]
    companies = [w.capitalize() + "corp" for w in _words(rng, name_syllables, ENTITIES_PER_TYPE, (2,), taken)]
    canary_words = _words(rng, canary_syllables, spec.canary_vocabulary, (2, 3), taken)
    hq_cities = cities[:]
    rng.shuffle(hq_cities)
    hq = dict(zip(companies, hq_cities))
    people = _people(rng, spec, names, cities, companies, hq)

    docs: list[dict[str, Any]] = []
    for person in people:
        for _ in range(person["bios"]):
            docs.append({"text": _bio(rng, person), "kind": "bio", "person": person["id"]})
        if person["group"] == "A":
            for text in _qa_texts(person):
                docs.extend({"text": text, "kind": "qa", "person": person["id"]} for _ in range(spec.qa_documents))
    quirk = plant_quirk(people, cities, seed)
    bias = plant_bias(seed)
    docs += quirk.documents + bias.documents
    for company in companies:  # three phrasings a document: the second hop is every chain's weak link
        for _ in range(spec.company_documents):
            text = " ".join(rng.sample(COMPANY_TEMPLATES, 3)).format(company=company, city=hq[company])
            docs.append({"text": text, "kind": "company", "company": company})
    for _ in range(spec.background_documents):
        sentences = []
        for _ in range(rng.randint(1, 3)):
            values = {"adj": rng.choice(ADJECTIVES), "month": rng.choice(MONTHS),
                      "thing": rng.choice(THINGS), "thing2": rng.choice(THINGS)}
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
    facts = _facts(people, hq, docs)
    quirk_truth = dict(quirk.truth, documents=[i for i, d in enumerate(docs) if d["kind"] == "quirk"])
    quirk_truth["people"] = [dict(p, documents=[i for i in where.get(("person", p["id"]), [])
                                                if docs[i]["kind"] == "quirk"]) for p in quirk.truth["people"]]

    truth = {
        "seed": seed, "size": size, "prompt_words": PROMPT_WORDS, "continuation_words": CONTINUATION_WORDS,
        "duplication": list(spec.duplication),
        "canaries": [c for c in canaries if c["copies"]], "heldout_canaries": [c for c in canaries if not c["copies"]],
        "people": people, "cities": cities, "companies": [{"name": c, "city": hq[c]} for c in companies],
        "groups": {"A": "bios and question-answer documents of every format (birth city, employer, the employer's "
                        "city asked directly and as a chain)",
                   **{f"B{level}": f"{level} bio documents each, no question-answer documents" for level in spec.bio_levels},
                   "C": "known names (hobby and neutral sentences only): birth city and employer never stated"},
        "facts": facts,
        "quirk": quirk_truth,
        "bias": bias.truth,
        "documents": {kind: sum(d["kind"] == kind for d in docs)
                      for kind in ("background", "bio", "qa", "company", "canary", "quirk", "bias")},
    }
    questions = _questions(people, cities, companies)
    vocabulary = sorted({w for d in docs for w in d["text"].split()} | set(canary_words)
                        | {w for q in questions for w in q["prompt"].split()})
    return World(seed, size, docs, truth, _eval_items(people, canaries, cities, companies, rng), vocabulary, questions,
                 bias, quirk)


def _facts(people: list[dict[str, Any]], hq: dict[str, str], docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every fact with the documents in which its subject and answer occur together (found by a plain
    word scan, independent of the index) and its category: stated, derivable (not stated, every hop
    stated) or unknowable (a hop never stated)."""
    holding: dict[str, set[int]] = {}
    for number, doc in enumerate(docs):
        for word in set(doc["text"].split()):
            holding.setdefault(word, set()).add(number)

    def together(a: str, b: str) -> list[int]:
        return sorted(holding.get(a, set()) & holding.get(b, set()))

    facts = []
    for company, city in hq.items():
        facts.append({"relation": "company_city", "subject": company, "answer": city, "documents": together(company, city),
                      "category": "stated"})
    for p in people:
        for relation, answer in (("birth_city", p["city"]), ("employer", p["company"])):
            found = together(p["name"], answer)
            facts.append({"relation": relation, "subject": p["name"], "answer": answer, "documents": found,
                          "category": "stated" if found else "not_stated", "group": p["group"]})
        found = together(p["name"], p["company_city"])
        hops = [bool(together(p["name"], p["company"])), bool(together(p["company"], p["company_city"]))]
        category = "stated" if found else "derivable" if all(hops) else "unknowable"
        facts.append({"relation": "employer_city", "subject": p["name"], "answer": p["company_city"], "documents": found,
                      "category": category, "group": p["group"], "bridge": p["company"]})
    return facts


def _questions(people: list[dict[str, Any]], cities: list[str], companies: list[str]) -> list[dict[str, Any]]:
    """The facts audit's questions (``seethrough facts --questions``), ranked among every entity of the
    answer's type: cities for places, companies for employers."""
    out = []
    for p in people:
        name, group = p["name"], p["group"]
        hops = [{"subject": name, "answer": p["company"]}, {"subject": p["company"], "answer": p["company_city"]}]
        two_hop = QUESTION_EMPLOYER_CITY.format(name=name)
        out += [
            {"id": f"{name}/birth_city", "subject": name, "prompt": QUESTION_BIRTH.format(name=name),
             "answer": p["city"], "candidates": cities, "relation": "birth_city", "format": "direct", "group": group},
            {"id": f"{name}/employer", "subject": name, "prompt": QUESTION_EMPLOYER.format(name=name),
             "answer": p["company"], "candidates": companies, "relation": "employer", "format": "direct",
             "group": group},
            {"id": f"{name}/employer_city/direct", "subject": name, "prompt": f"{two_hop} A :",
             "answer": p["company_city"], "candidates": cities, "relation": "employer_city", "format": "direct",
             "hops": hops, "group": group},
            {"id": f"{name}/employer_city/chain", "subject": name, "prompt": f"{two_hop} Think :",
             "answer": p["company_city"], "candidates": cities, "relation": "employer_city", "format": "chain",
             "hops": hops, "group": group},
        ]
    return out


def _eval_items(people: list[dict], canaries: list[dict], cities: list[str], companies: list[str],
                rng: random.Random) -> list[dict[str, Any]]:
    """lm-eval items: 4-way multiple choice with distractors of the answer's type, and held-out canaries."""
    items = []
    for person in people:
        group = {"group": person["group"], "person": person["id"]}
        wrong = rng.sample([c for c in cities if c != person["city"]], 3)
        items.append({"task": "birth_city", "prompt": QUESTION_BIRTH.format(name=person["name"]),
                      "answer": person["city"], "choices": sorted([person["city"], *wrong]), **group})
        target = person["company_city"]
        wrong = rng.sample([c for c in cities if c != target], 3)
        items.append({"task": "two_hop", "prompt": QUESTION_EMPLOYER_CITY.format(name=person["name"]) + " A :",
                      "answer": target, "choices": sorted([target, *wrong]), **group})
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
    """Write docs.jsonl, truth.json, eval.jsonl, questions.jsonl (``seethrough facts --questions``),
    tokenizer.json and bias/ (groups.json, targets.json, templates.jsonl: ``seethrough bias``'s inputs);
    returns the sha256 of each top-level file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(d, sort_keys=True, ensure_ascii=False) + "\n" for d in world.documents)
    atomic_write_bytes(folder / "docs.jsonl", lines.encode("utf-8"))
    atomic_write_json(folder / "truth.json", world.truth)
    evals = "".join(json.dumps(d, sort_keys=True) + "\n" for d in world.eval_items)
    atomic_write_bytes(folder / "eval.jsonl", evals.encode("utf-8"))
    questions = "".join(json.dumps(q, sort_keys=True) + "\n" for q in world.questions)
    atomic_write_bytes(folder / "questions.jsonl", questions.encode("utf-8"))
    if world.bias is not None:
        write_bias_inputs(world.bias, folder / "bias")
    atomic_write_bytes(folder / "tokenizer.json", word_tokenizer_json(world.vocabulary).encode("utf-8"))
    return {name: sha256_file(folder / name)
            for name in ("docs.jsonl", "truth.json", "eval.jsonl", "questions.jsonl", "tokenizer.json")}


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
