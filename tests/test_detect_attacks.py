"""Attacks are deterministic and change only what their name says; the sanitiser undoes the invisible ones."""

from __future__ import annotations

import re
import unicodedata

import pytest

from seethrough.audit.detect.attacks import (ATTACKS, CONFUSABLES, MISSPELLINGS, ZERO_WIDTH_SPACE, attack_seed,
                                             parse_attacks, sanitise)
from seethrough.errors import ConfigError

TEXT = ("The committee met on 12 March 2024 and the chair said that a new budget of 3.5 million was necessary . "
        "People believe the weather in the city was cold , and an old friend wrote about it . "
        "After the first meeting the group went to a small restaurant near the river where they talked for hours "
        "about what would happen next and whether the plan would ever succeed in the end . Okay .")


@pytest.mark.parametrize("name", list(ATTACKS))
def test_every_attack_is_deterministic_given_its_seed(name):
    attack = ATTACKS[name]
    assert attack(TEXT, 7) == attack(TEXT, 7)
    outputs = {attack(TEXT, seed) for seed in range(8)}
    if name != "zero_width_space":  # at its rate of 1.0 every character is chosen, whatever the seed
        assert len(outputs) > 1, f"{name} ignores its seed"
    assert attack("", 3) == ""


def test_homoglyph_changes_only_lookalike_characters_into_their_twins():
    out = ATTACKS["homoglyph"](TEXT, 1)
    assert len(out) == len(TEXT) and out != TEXT
    for a, b in zip(TEXT, out):
        assert a == b or CONFUSABLES[b] == a, (a, b)
        if a in "aecpyoxi":
            assert b != a  # every lower-case look-alike is replaced
    assert unicodedata.name(out[0]).split()[0] in ("CYRILLIC", "GREEK")  # "T"


def test_zero_width_space_after_every_character():
    out = ATTACKS["zero_width_space"](TEXT, 2)
    assert out.replace(ZERO_WIDTH_SPACE, "") == TEXT
    assert out == "".join(ch + ZERO_WIDTH_SPACE for ch in TEXT)  # rate 1.0: after every character
    from seethrough.audit.detect.attacks import zero_width_space

    half = zero_width_space(TEXT, 2, rate=0.5)
    assert half.replace(ZERO_WIDTH_SPACE, "") == TEXT and half.count(ZERO_WIDTH_SPACE) == len(TEXT) // 2
    assert half != zero_width_space(TEXT, 3, rate=0.5)


def test_whitespace_only_adds_spaces():
    out = ATTACKS["whitespace"](TEXT, 3)
    assert re.sub(" +", " ", out).rstrip(" ") == TEXT
    assert len(out) - len(TEXT) == int(0.2 * len(TEXT.split(" ")))


def test_upper_lower_flips_only_first_letters_of_five_percent_of_words():
    out = ATTACKS["upper_lower"](TEXT, 4)
    changed = [i for i, (a, b) in enumerate(zip(TEXT, out)) if a != b]
    words = [m.start() for m in re.finditer(r"\w+", TEXT) if m.group()[0].isalpha()]
    assert len(out) == len(TEXT) and set(changed) <= set(words) and len(changed) == int(0.05 * len(words))
    assert all(out[i] == TEXT[i].swapcase() for i in changed)


def test_article_deletion_removes_only_lower_case_articles():
    out = ATTACKS["article_deletion"](TEXT, 5)
    found = len(re.findall(r" (?:a|an|the)(?= )", TEXT))
    assert out.split() == [w for w in out.split()]  # still single-spaced
    removed = TEXT.split(" ")
    kept = out.split(" ")
    assert len(removed) - len(kept) == int(0.5 * found)
    # the words removed are articles, in order: the kept words are a subsequence of the original
    it = iter(removed)
    missing = []
    for word in kept:
        for original in it:
            if original == word:
                break
            missing.append(original)
    assert set(missing) <= {"a", "an", "the"} and "The" in kept  # a sentence-initial "The" is not an article here


def test_insert_paragraphs_only_turns_sentence_gaps_into_blank_lines():
    out = ATTACKS["insert_paragraphs"](TEXT, 6)
    assert out.replace("\n\n", " ") == TEXT
    gaps = len(re.findall(r"(?<=[.!?])\s+(?=\S)", TEXT))
    assert out.count("\n\n") == int(0.5 * gaps)


def test_number_redraws_digits_of_half_the_numbers_only():
    out = ATTACKS["number"](TEXT, 8)
    assert len(out) == len(TEXT)
    assert all(a == b for a, b in zip(TEXT, out) if not a.isdigit())
    assert all(b.isdigit() for a, b in zip(TEXT, out) if a.isdigit())
    numbers_before, numbers_after = re.findall(r"\d+\.?\d*", TEXT), re.findall(r"\d+\.?\d*", out)
    assert [len(x) for x in numbers_before] == [len(x) for x in numbers_after]


def test_misspelling_changes_only_listed_words_into_listed_misspellings():
    out = ATTACKS["misspelling"](TEXT, 9)
    before, after = re.split(r"([A-Za-z][A-Za-z']*)", TEXT), re.split(r"([A-Za-z][A-Za-z']*)", out)
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    words = len(re.findall(r"[A-Za-z][A-Za-z']*", TEXT))
    assert 0 < len(changed) <= int(0.2 * words)
    for a, b in changed:
        assert b.lower() in MISSPELLINGS[a.lower()] and (a[0].isupper() == b[0].isupper())


def test_adjacent_swap_swaps_one_pair_in_each_long_sentence():
    out = ATTACKS["adjacent_swap"](TEXT, 10)
    assert sorted(out.split()) == sorted(TEXT.split()) and out != TEXT
    sentences_before = [s.split() for s in re.findall(r"[^.!?]+[.!?]*", TEXT)]
    sentences_after = [s.split() for s in re.findall(r"[^.!?]+[.!?]*", out)]
    for a, b in zip(sentences_before, sentences_after):
        differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        if len(a) <= 20:
            assert not differ
        else:
            assert len(differ) == 2 and differ[1] == differ[0] + 1 and a[differ[0]] == b[differ[1]]


def test_attack_seeds_are_per_text_and_per_attack():
    assert attack_seed(0, "a", "whitespace") == attack_seed(0, "a", "whitespace")
    assert len({attack_seed(0, t, a) for t in "abc" for a in ("whitespace", "number")}) == 6


@pytest.mark.parametrize("name", ["homoglyph", "zero_width_space", "whitespace", "insert_paragraphs"])
def test_the_sanitiser_undoes_the_invisible_attacks(name):
    attacked = ATTACKS[name](TEXT, 11)
    assert attacked != TEXT
    assert sanitise(attacked) == sanitise(TEXT) == TEXT  # TEXT is plain single-spaced ASCII


def test_the_sanitiser_leaves_real_greek_and_cyrillic_alone():
    russian = "Привет , как дела ? Это сор и пара ."  # "сор", "пара" are all look-alikes, but the text is Russian
    assert sanitise(russian) == russian
    greek = "Ο καιρός ήταν καλός"
    assert sanitise(greek) == greek
    assert sanitise("the c\u043empany") == "the company"  # a word mixing scripts is folded
    assert sanitise("caf\u00e9 \uff21") == "café A"  # NFKC folds the full-width letter


def test_unknown_attack_is_one_line():
    with pytest.raises(ConfigError, match="'homoglyphs' is not an attack; choose from homoglyph"):
        parse_attacks("homoglyphs,number")
    assert parse_attacks("none") == () and parse_attacks(None) == tuple(ATTACKS)
    assert parse_attacks("number,number") == ("number",)
