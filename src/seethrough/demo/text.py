"""A deterministic synthetic text collection with planted repeats, for the built-in demo.

Background documents are sentences about invented people and places (some with non-ASCII names,
some documents empty); planted passages are random secret-like strings copied into 1, 2, 4, ...
documents. The same seed always gives the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

FIRST = ["Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Farah", "Goran", "Hana", "Iker", "Jonas", "Kaito",
         "Lucía", "Mateus", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Søren", "Tomás", "Uma", "Zoë"]
LAST = ["Abara", "Berg", "Castell", "Dubois", "Eriksen", "Fontaine", "Grün", "Haddad", "Ivanova", "Jansen",
        "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov", "Quispe", "Rossi", "Šimek", "Tanaka"]
CITIES = ["Vellmar", "Quorra", "Ostrava Nova", "Lindholm", "Kesh", "Brightwater", "Marrow", "Łódź Wielka",
          "Tarsin", "東京湾市", "Eastmere", "Cindral"]
COMPANIES = ["Helix Works", "Norrland Foods", "Bluefin Labs", "Ostwind", "Cobalt & Rye", "Marlow Freight"]
VERBS = ["works at", "founded", "left", "visited the offices of", "wrote about", "invested in"]
TOPICS = ["the harbour", "a new bridge", "the winter market", "river trade", "the old library",
          "solar farms", "the night trains", "a music festival"]


@dataclass
class SyntheticCollection:
    documents: list[dict[str, Any]]
    planted: list[dict[str, Any]] = field(default_factory=list)
    """Each: passage text, copies planted, documents it was planted in."""


def _sentence(rng: random.Random) -> str:
    person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    kind = rng.random()
    if kind < 0.4:
        return f"{person} {rng.choice(VERBS)} {rng.choice(COMPANIES)} in {rng.choice(CITIES)}."
    if kind < 0.7:
        return f"In {rng.choice(CITIES)}, people talk about {rng.choice(TOPICS)}."
    return f"{person} spoke about {rng.choice(TOPICS)} and {rng.choice(TOPICS)}."


def _passage(rng: random.Random) -> str:
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(4, 8))) for _ in range(rng.randint(6, 10))]
    return "secret " + " ".join(words) + "."


def generate(seed: int = 0, documents: int = 2000, sentences: tuple[int, int] = (3, 12),
             duplication: tuple[int, ...] = (1, 2, 4, 8, 16, 32), per_count: int = 4) -> SyntheticCollection:
    rng = random.Random(seed)
    docs = []
    for i in range(documents):
        if i % 97 == 13:
            text = ""  # empty documents exist in real collections; they must not break anything
        else:
            text = " ".join(_sentence(rng) for _ in range(rng.randint(*sentences)))
        docs.append({"text": text, "id": f"doc-{i:06d}", "source": rng.choice(["news", "forum", "wiki"])})
    planted = []
    candidates = [i for i, d in enumerate(docs) if d["text"]]
    for copies in duplication:
        for _ in range(per_count):
            passage = _passage(rng)
            targets = sorted(rng.sample(candidates, copies))
            for t in targets:
                docs[t]["text"] += " " + passage  # always after a space: one tokenization
            planted.append({"text": passage, "copies": copies, "documents": targets})
    return SyntheticCollection(docs, planted)
