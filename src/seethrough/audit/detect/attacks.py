"""Cheap text edits that fool detectors, and the sanitiser that undoes the invisible ones.

Each attack is a deterministic ``(text, seed) -> text`` that changes only what its name says, at
the rate RAID's attacks use (Dugan et al. 2024, ``generation/adversarial``; restated in
shared/research/detectors.md §1.2, not copied): the same text and seed give the same output on
every machine (``random.Random`` keeps its algorithm stable). Seeds per text come from
:func:`attack_seed`, so an attacked text does not depend on which other texts are attacked.

- ``homoglyph``: every character with a Cyrillic or Greek look-alike becomes it (a e c p y o x i;
  upper-case letters pick at random between the Cyrillic and the Greek twin where both exist).
- ``zero_width_space``: U+200B after every character (RAID's rate 1.0).
- ``whitespace``: an extra space after 20% of the space-separated pieces, drawn with replacement.
- ``upper_lower``: the first letter of 5% of the words flips case.
- ``article_deletion``: half of the lower-case articles " a ", " an ", " the " go (one space stays).
- ``insert_paragraphs``: half of the sentence boundaries become a blank line ("\\n\\n").
- ``number``: in half of the numbers every digit is redrawn uniformly (length and punctuation kept).
- ``misspelling``: words of a built-in list of common English misspellings (:data:`MISSPELLINGS`,
  written for seethrough) are misspelled, up to 20% of the words, chosen at random (RAID picks by a
  GPT-2 score only when more candidates than its budget exist; here the draw is seeded instead).
- ``adjacent_swap``: Fast-DetectGPT's "decoherence": one random pair of adjacent words swapped in
  every sentence of more than 20 words.

``sanitise`` is the defence: NFKC normalisation, invisible characters removed, Cyrillic/Greek
look-alikes folded to Latin inside words that mix scripts (or, in mostly Latin text, words made
only of look-alikes), and every run of white space made one space.
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable

from ...errors import ConfigError

# lower-case letters with one look-alike each; upper-case ones with a Cyrillic and/or a Greek twin
_LOWER_TWINS = {"a": "\u0430", "e": "\u0435", "c": "\u0441", "p": "\u0440", "y": "\u0443", "o": "\u043e",
                "x": "\u0445", "i": "\u0456"}
_UPPER_TWINS = {"A": ("\u0410", "\u0391"), "B": ("\u0412", "\u0392"), "E": ("\u0415", "\u0395"),
                "K": ("\u041a", "\u039a"), "O": ("\u041e", "\u039f"), "P": ("\u0420", "\u03a1"),
                "M": ("\u041c", "\u039c"), "H": ("\u041d", "\u0397"), "T": ("\u0422", "\u03a4"),
                "X": ("\u0425", "\u03a7"), "I": ("\u0406", "\u0399"), "C": ("\u0421",), "N": ("\u039d",),
                "Z": ("\u0396",)}
# what the sanitiser folds back: every twin above, and a few more look-alikes of the same scripts
CONFUSABLES = {twin: latin for latin, twin in _LOWER_TWINS.items()}
CONFUSABLES.update({twin: latin for latin, twins in _UPPER_TWINS.items() for twin in twins})
CONFUSABLES.update({"\u0455": "s", "\u0458": "j", "\u04bb": "h", "\u0501": "d", "\u0405": "S", "\u0408": "J",
                    "\u03bf": "o", "\u03b9": "i"})
INVISIBLE = frozenset("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u2061\u2062\u2063\u2064")
"""Zero-width and other invisible characters the sanitiser removes."""

ZERO_WIDTH_SPACE = "\u200b"
ARTICLES = ("a", "an", "the")

# Common English misspellings (a word -> ways it is misspelled), written for seethrough from the
# usual typing errors (swapped, doubled or dropped letters); lower case.
MISSPELLINGS: dict[str, tuple[str, ...]] = {
    "the": ("teh", "th"), "and": ("adn", "nad"), "that": ("taht", "tht"), "with": ("wiht", "wtih"),
    "this": ("tihs", "thsi"), "from": ("form", "frmo"), "they": ("tehy", "thye"), "have": ("ahve", "hvae"),
    "there": ("thier", "ther"), "their": ("thier", "theri"), "which": ("whcih", "wich"), "would": ("woudl", "wuold"),
    "about": ("abotu", "aboot"), "because": ("becuase", "becasue"), "people": ("poeple", "peopel"),
    "believe": ("beleive", "belive"), "receive": ("recieve", "receve"), "definitely": ("definately", "defintely"),
    "separate": ("seperate", "separete"), "occurred": ("occured", "ocurred"), "until": ("untill", "util"),
    "government": ("goverment", "governmnet"), "environment": ("enviroment", "enviornment"),
    "necessary": ("neccessary", "necesary"), "beginning": ("begining", "beggining"), "really": ("realy", "raelly"),
    "where": ("wehre", "whre"), "were": ("wre", "wer"), "what": ("waht", "wat"), "when": ("wehn", "whne"),
    "could": ("cuold", "coudl"), "should": ("shoudl", "shuold"), "other": ("ohter", "otehr"),
    "after": ("afetr", "aftre"), "first": ("frist", "fisrt"), "years": ("yeras", "yaers"),
    "world": ("wrold", "wolrd"), "between": ("betwen", "bewteen"), "through": ("throught", "thru"),
    "before": ("befor", "beofre"), "always": ("allways", "alwyas"), "something": ("somthing", "someting"),
    "tomorrow": ("tommorow", "tomorow"), "weird": ("wierd",), "friend": ("freind", "frend"),
    "science": ("sceince", "scince"), "experience": ("experiance", "expereince"), "address": ("adress",),
    "across": ("accross",), "argument": ("arguement",), "calendar": ("calender",), "committee": ("commitee",),
    "embarrass": ("embarass",), "existence": ("existance",), "foreign": ("foriegn",), "forward": ("foward",),
    "guarantee": ("garantee", "gaurantee"), "height": ("heigth",), "immediately": ("immediatly",),
    "independent": ("independant",), "knowledge": ("knowlege",), "library": ("libary",),
    "maintenance": ("maintainance",), "millennium": ("millenium",), "neighbour": ("nieghbour",),
    "noticeable": ("noticable",), "occasion": ("ocassion", "occassion"), "possession": ("posession",),
    "privilege": ("priviledge",), "publicly": ("publically",), "recommend": ("reccomend", "recomend"),
    "reference": ("refrence",), "relevant": ("relevent",), "restaurant": ("resturant",), "rhythm": ("rythm",),
    "schedule": ("schedual",), "sincerely": ("sincerly",), "succeed": ("suceed",), "surprise": ("suprise",),
    "truly": ("truely",), "village": ("vilage",), "wednesday": ("wensday",),
    "going": ("goign", "gonig"), "little": ("litle", "littel"), "still": ("stil",), "city": ("citty", "cty"),
    "weather": ("wether", "weahter"), "streets": ("sterets", "streest"),
    "markets": ("makrets",), "bridges": ("bridegs",), "gardens": ("gardnes",), "rivers": ("rviers",),
    "works": ("wroks",), "born": ("bron",), "company": ("compnay", "comapny"), "based": ("baesd",),
    "employed": ("employd",), "enjoys": ("enjoyes",), "weekends": ("weekneds",), "favourite": ("favourtie",),
}


def attack_seed(seed: int, text_id: str, attack: str) -> int:
    """The seed of one attack on one text: a hash of the run's seed, the text's id and the attack."""
    digest = hashlib.sha256(f"{seed}\x00{attack}\x00{text_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def homoglyph(text: str, seed: int) -> str:
    rng = random.Random(seed)
    out = []
    for ch in text:
        if ch in _LOWER_TWINS:
            out.append(_LOWER_TWINS[ch])
        elif ch in _UPPER_TWINS:
            twins = _UPPER_TWINS[ch]
            out.append(twins[rng.randrange(len(twins))] if len(twins) > 1 else twins[0])
        else:
            out.append(ch)
    return "".join(out)


def zero_width_space(text: str, seed: int, rate: float = 1.0) -> str:
    rng = random.Random(seed)
    chosen = set(rng.sample(range(len(text)), int(rate * len(text))))
    return "".join(ch + ZERO_WIDTH_SPACE if i in chosen else ch for i, ch in enumerate(text))


def whitespace(text: str, seed: int, rate: float = 0.2) -> str:
    rng = random.Random(seed)
    pieces = text.split(" ")
    extra = Counter(rng.choices(range(len(pieces)), k=int(rate * len(pieces))))  # one gap may get several
    return " ".join(piece + " " * extra[i] for i, piece in enumerate(pieces))


_WORD = re.compile(r"\w+")


def upper_lower(text: str, seed: int, rate: float = 0.05) -> str:
    rng = random.Random(seed)
    starts = [m.start() for m in _WORD.finditer(text) if m.group()[0].isalpha()
              and len(m.group()[0].swapcase()) == 1 and m.group()[0].swapcase() != m.group()[0]]
    chosen = set(rng.sample(starts, int(rate * len(starts))))
    return "".join(ch.swapcase() if i in chosen else ch for i, ch in enumerate(text))


_ARTICLE = re.compile(r" (?:a|an|the)(?= )")


def _share_of_matches(pattern: re.Pattern[str], text: str, rate: float, rng: random.Random) -> list[tuple[int, int]]:
    """Spans of ``floor(rate * count)`` matches of ``pattern``, drawn at random, in text order."""
    found = [m.span() for m in pattern.finditer(text)]
    return sorted(rng.sample(found, int(rate * len(found))))


def _replaced(text: str, spans: list[tuple[int, int]], replacement: str) -> str:
    """``text`` with each of the (sorted, disjoint) ``spans`` replaced by ``replacement``."""
    out, at = [], 0
    for start, end in spans:
        out += [text[at:start], replacement]
        at = end
    return "".join(out) + text[at:]


def article_deletion(text: str, seed: int, rate: float = 0.5) -> str:
    # the space before the article goes with it; the one after stays
    return _replaced(text, _share_of_matches(_ARTICLE, text, rate, random.Random(seed)), "")


_SENTENCE_GAP = re.compile(r"(?<=[.!?])\s+(?=\S)")


def insert_paragraphs(text: str, seed: int, rate: float = 0.5) -> str:
    return _replaced(text, _share_of_matches(_SENTENCE_GAP, text, rate, random.Random(seed)), "\n\n")


_NUMBER = re.compile(r"\d+\.?\d*")


def number(text: str, seed: int, rate: float = 0.5) -> str:
    rng = random.Random(seed)
    chars = list(text)
    for start, end in _share_of_matches(_NUMBER, text, rate, rng):
        for i in range(start, end):
            if chars[i].isdigit():
                chars[i] = str(rng.randrange(10))
    return "".join(chars)


_LETTERS = re.compile(r"[A-Za-z][A-Za-z']*")


def _with_case_of(word: str, replacement: str) -> str:
    if word.isupper() and len(word) > 1:
        return replacement.upper()
    if word[0].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement


def misspelling(text: str, seed: int, rate: float = 0.2) -> str:
    rng = random.Random(seed)
    words = list(_LETTERS.finditer(text))
    candidates = [m for m in words if m.group().lower() in MISSPELLINGS]
    budget = min(int(rate * len(words)), len(candidates))
    chosen = sorted(rng.sample(range(len(candidates)), budget))
    out, at = [], 0
    for k in chosen:
        m = candidates[k]
        wrong = rng.choice(MISSPELLINGS[m.group().lower()])
        out += [text[at:m.start()], _with_case_of(m.group(), wrong)]
        at = m.end()
    return "".join(out) + text[at:]


_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
_TOKEN = re.compile(r"\S+")


def adjacent_swap(text: str, seed: int, min_words: int = 20) -> str:
    rng = random.Random(seed)
    chars = list(text)
    for sentence in _SENTENCE.finditer(text):
        words = [(m.start() + sentence.start(), m.end() + sentence.start()) for m in _TOKEN.finditer(sentence.group())]
        if len(words) <= min_words:
            continue
        i = rng.randrange(len(words) - 1)
        (a0, a1), (b0, b1) = words[i], words[i + 1]
        chars[a0:b1] = list(text[b0:b1] + text[a1:b0] + text[a0:a1])  # the gap between them stays as it was
    return "".join(chars)


ATTACKS: dict[str, Callable[[str, int], str]] = {
    "homoglyph": homoglyph, "zero_width_space": zero_width_space, "whitespace": whitespace,
    "upper_lower": upper_lower, "article_deletion": article_deletion, "insert_paragraphs": insert_paragraphs,
    "number": number, "misspelling": misspelling, "adjacent_swap": adjacent_swap,
}
"""Every attack by name, each ``(text, seed) -> text``."""


def parse_attacks(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Attack names from a comma list (``all``: every attack; ``none`` or empty: no attack)."""
    if spec is None:
        return tuple(ATTACKS)
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    if names == ["all"]:
        return tuple(ATTACKS)
    if names in ([], ["none"]):
        return ()
    unknown = [n for n in names if n not in ATTACKS]
    if unknown:
        raise ConfigError(f"--attacks: {', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not an "
                          f"attack; choose from {', '.join(ATTACKS)} (or all, none)")
    return tuple(dict.fromkeys(names))


def _script(ch: str) -> str:
    """'latin', 'cyrillic', 'greek' or 'other', by code point block (Latin: ASCII and the Latin-1 to
    Latin Extended-B letters)."""
    code = ord(ch)
    if code < 0x80 or 0xC0 <= code < 0x250:
        return "latin"
    if 0x400 <= code < 0x530:
        return "cyrillic"
    if 0x370 <= code < 0x400:
        return "greek"
    return "other"


_FOLD = str.maketrans(CONFUSABLES)


def _fold_word(word: str, mostly_latin: bool) -> str:
    if word.isascii():
        return word
    folded = word.translate(_FOLD)
    if folded == word:
        return word  # no look-alike in it
    letters = [_script(ch) for ch in folded if ch.isalpha()]
    if any(s != "latin" for s in letters):
        return word  # a letter of another script that is no look-alike: a real Greek or Cyrillic word
    has_latin = any(_script(ch) == "latin" for ch in word if ch.isalpha())
    return folded if has_latin or mostly_latin else word


_WHITE = re.compile(r"\s+")


def sanitise(text: str) -> str:
    """NFKC, invisible characters removed, look-alikes folded in mixed-script words, white space collapsed."""
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return _WHITE.sub(" ", text).strip()
    text = "".join(ch for ch in text if ch not in INVISIBLE)
    # a word made only of look-alikes is folded when Latin is most of the letters that are not look-alikes
    plain = [_script(ch) for ch in text if ch.isalpha() and ch not in CONFUSABLES]
    mostly_latin = bool(plain) and plain.count("latin") > len(plain) / 2
    text = _TOKEN.sub(lambda m: _fold_word(m.group(), mostly_latin), text)
    return _WHITE.sub(" ", text).strip()
