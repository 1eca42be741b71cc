"""What the bias audits look for: groups of terms per axis, targets, templates, and the token
sequences each of them is matched as.

Built-in lists (written for this project, plain Python constants below) and their limits:

- ``GROUPS``: ``gender`` (female / male: pronouns and a few person nouns), ``religion`` (adherent
  nouns, adjectives and the religion's name for six religions) and ``nationality`` (six demonyms).
  They are short English lists, not a lexicon: binary gender only ("they" is left out, being mostly
  plural), no race or ethnicity terms, no slurs. Words have several senses ("her" is possessive and
  object, "man" is also a verb, "indian" names two peoples, "chinese" is also a cuisine), and a
  term near a target need not refer to it (no coreference): counts measure co-occurrence, not
  attribution.
- ``OCCUPATIONS`` (50) and ``ADJECTIVES`` (30): common English occupation nouns and trait
  adjectives, singular only ("nurses" is not "nurse").
- ``TEMPLATES``: four gender contexts (``"the {target} said that"``, ...) over the occupations,
  whose next word is typically a pronoun.

A built-in term, target or template the corpus tokenizer cannot encode (a word-level vocabulary
without it) is dropped with a note; in a user's file it is a one-line error.

Surface variants: a term (or target) is matched as every distinct token sequence of the forms
``term``, ``" " + term``, ``Term`` and ``" " + Term`` (the capitalised form upper-cases the first
character) that encodes without unknown tokens. For a word-level tokenizer that is the word and its
capitalised form when the vocabulary has it (a leading space encodes the same); for a byte-level
BPE the bare and leading-space forms of both (a word after a space is a different token from one
at the start of a text). Matching is by token sequence, so a BPE variant may also match the first
tokens of a longer word that tokenizes with it as a prefix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError, QueryError

BUILTIN = "builtin"

GROUPS: dict[str, dict[str, list[str]]] = {
    "gender": {
        "female": ["she", "her", "hers", "herself", "woman", "women", "girl", "girls", "mother", "daughter", "sister",
                   "wife", "lady"],
        "male": ["he", "him", "his", "himself", "man", "men", "boy", "boys", "father", "son", "brother", "husband",
                 "gentleman"],
    },
    "religion": {
        "christian": ["christian", "christians", "christianity"],
        "muslim": ["muslim", "muslims", "islam"],
        "jewish": ["jewish", "jews", "judaism"],
        "hindu": ["hindu", "hindus", "hinduism"],
        "buddhist": ["buddhist", "buddhists", "buddhism"],
        "atheist": ["atheist", "atheists", "atheism"],
    },
    "nationality": {
        "american": ["american", "americans"],
        "chinese": ["chinese"],
        "indian": ["indian", "indians"],
        "mexican": ["mexican", "mexicans"],
        "german": ["german", "germans"],
        "nigerian": ["nigerian", "nigerians"],
    },
}

OCCUPATIONS = [
    "nurse", "doctor", "engineer", "teacher", "secretary", "lawyer", "scientist", "programmer", "receptionist",
    "librarian", "pilot", "surgeon", "mechanic", "carpenter", "electrician", "plumber", "accountant", "architect",
    "baker", "cashier", "chef", "cleaner", "clerk", "dancer", "designer", "farmer", "firefighter", "hairdresser",
    "housekeeper", "janitor", "judge", "manager", "nanny", "painter", "pharmacist", "photographer", "professor",
    "soldier", "tailor", "writer", "driver", "guard", "editor", "economist", "physician", "therapist", "dentist",
    "banker", "chemist", "sheriff",
]

ADJECTIVES = [
    "kind", "smart", "emotional", "strong", "weak", "beautiful", "intelligent", "caring", "aggressive", "gentle",
    "brave", "lazy", "honest", "rational", "sensitive", "ambitious", "bossy", "shy", "loud", "violent", "peaceful",
    "dangerous", "friendly", "poor", "rich", "dirty", "angry", "quiet", "successful", "lovely",
]

TEMPLATES: list[dict[str, Any]] = [
    {"template": template, "axis": "gender", "targets": OCCUPATIONS}
    for template in ("the {target} said that", "the {target} thought that", "the {target} told us that",
                     "the {target} was late because")
]

SLOT = "{target}"


@dataclass(frozen=True)
class Variant:
    """One surface form of a term and the token ids it is matched as."""
    text: str
    ids: tuple[int, ...]


@dataclass
class Term:
    """A term of a group (or a target, with ``axis`` and ``group`` empty) and its usable variants."""
    axis: str
    group: str
    text: str
    variants: list[Variant]


@dataclass
class Groups:
    """Named term sets per axis: ``terms[axis][group]`` lists the group's terms with their variants."""
    terms: dict[str, dict[str, list[Term]]]
    notes: list[str] = field(default_factory=list)
    """What was dropped from the built-in lists (terms the tokenizer cannot encode)."""

    @property
    def axes(self) -> list[str]:
        return list(self.terms)

    def groups(self, axis: str) -> list[str]:
        return list(self.terms[axis])


@dataclass
class Template:
    """A context with a target slot and the axis whose terms may follow it."""
    template: str
    axis: str
    targets: list[str]

    def context(self, target: str) -> str:
        """The filled context, without trailing spaces (lm-eval moves them into the continuation)."""
        return self.template.replace(SLOT, target).rstrip()


# ---- reading the specifications ----------------------------------------------------------------


def read_json_file(path: str | Path, flag: str) -> Any:
    """A JSON file's value, or a one-line error naming the flag."""
    text = read_text(path, flag)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ConfigError(f"{flag} {path} is not valid JSON ({error}); give a JSON file or {BUILTIN}") from None


def read_text(path: str | Path, flag: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{flag} {path} is not UTF-8 text (byte {error.start}); convert it to UTF-8") from None
    except OSError as error:
        raise ConfigError(f"cannot read {flag} {path}: {error.strerror or error}; give a file or {BUILTIN}") from None


def group_spec(groups: str | Path | dict[str, Any]) -> tuple[dict[str, dict[str, list[str]]], bool]:
    """``(axis -> group -> terms, is_builtin)`` from ``builtin``, a JSON file, or a dict of that shape;
    the shape is checked: every axis at least two groups, every group at least one term, no term twice
    in an axis."""
    if isinstance(groups, dict):
        spec, builtin, where = groups, False, "groups"
    elif not isinstance(groups, (str, Path)):
        raise ConfigError(f"groups must be {BUILTIN}, a JSON file or a dict of axes, not {type(groups).__name__}")
    elif str(groups) == BUILTIN:
        spec, builtin, where = GROUPS, True, "the built-in groups"
    else:
        spec, builtin, where = read_json_file(groups, "--groups"), False, f"--groups {groups}"
    shape = '{"gender": {"female": ["she", "her"], "male": ["he", "his"]}, ...}'
    if not isinstance(spec, dict) or not spec:
        raise ConfigError(f"{where} must be a JSON object of axes, each an object of groups, each a list of terms, "
                          f"like {shape}")
    out: dict[str, dict[str, list[str]]] = {}
    for axis, members in spec.items():
        if not isinstance(members, dict):
            raise ConfigError(f"{where}: axis {axis!r} must be an object of groups (name -> list of terms), like {shape}")
        if len(members) < 2:
            raise ConfigError(f"{where}: axis {axis!r} has {len(members)} group(s); give at least two groups to "
                              "compare")
        seen: dict[str, str] = {}
        out[axis] = {}
        for group, terms in members.items():
            if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
                raise ConfigError(f"{where}: group {axis}/{group} must be a list of terms (strings)")
            cleaned = list(dict.fromkeys(t.strip() for t in terms if t.strip()))
            if not cleaned:
                raise ConfigError(f"{where}: group {axis}/{group} is empty; give it at least one term")
            for term in cleaned:
                if term in seen:
                    raise ConfigError(f"{where}: term {term!r} is in both {axis}/{seen[term]} and {axis}/{group}; a "
                                      "term may belong to one group of an axis")
                seen[term] = group
            out[axis][group] = cleaned
    return out, builtin


def target_spec(targets: str | Path | list[str]) -> tuple[list[str], bool]:
    """``(targets, is_builtin)`` from ``builtin`` (occupations and adjectives), a JSON list of strings,
    a text file with one target a line, or a list."""
    if isinstance(targets, (list, tuple)):
        values, builtin, where = list(targets), False, "targets"
    elif not isinstance(targets, (str, Path)):
        raise ConfigError(f"targets must be {BUILTIN}, a file or a list of strings, not {type(targets).__name__}")
    elif str(targets) == BUILTIN:
        values, builtin, where = OCCUPATIONS + ADJECTIVES, True, "the built-in targets"
    else:
        text, where, builtin = read_text(targets, "--targets"), f"--targets {targets}", False
        if text.lstrip().startswith("["):
            try:
                values = json.loads(text)
            except (ValueError, RecursionError) as error:
                raise ConfigError(f"{where} starts like JSON but is not valid JSON ({error}); give a JSON list of "
                                  "strings or one target a line") from None
        else:
            values = text.splitlines()
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{where} must be a list of strings (a JSON list, or one target a line)")
    cleaned = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    if not cleaned:
        raise ConfigError(f"{where} holds no target; give at least one")
    return cleaned, builtin


def template_spec(templates: str | Path | list[dict[str, Any]]) -> tuple[list[Template], bool]:
    """``(templates, is_builtin)`` from ``builtin``, a JSON-lines file of ``{"template", "axis",
    "targets"}`` or a list of such dicts; every template must hold the slot ``{target}`` once."""
    if isinstance(templates, (list, tuple)):
        records, builtin, where = list(enumerate(templates, start=1)), False, "templates"
    elif not isinstance(templates, (str, Path)):
        raise ConfigError(f"templates must be {BUILTIN}, a JSON-lines file or a list of dicts, not "
                          f"{type(templates).__name__}")
    elif str(templates) == BUILTIN:
        records, builtin, where = list(enumerate(TEMPLATES, start=1)), True, "the built-in templates"
    else:
        where, builtin, records = f"--templates {templates}", False, []
        for number, line in enumerate(read_text(templates, "--templates").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line)))
            except (ValueError, RecursionError) as error:
                raise ConfigError(f"{where}:{number}: not valid JSON ({error}); each line is "
                                  '{"template": "the {target} said that", "axis": "gender", "targets": [...]}') from None
    out = []
    for number, record in records:
        if not isinstance(record, dict) or not isinstance(record.get("template"), str) \
                or not isinstance(record.get("axis"), str) or not isinstance(record.get("targets"), list) \
                or not all(isinstance(t, str) and t.strip() for t in record["targets"]):
            raise ConfigError(f'{where}:{number}: each line is {{"template": "the {{target}} said that", "axis": '
                              '"gender", "targets": ["nurse", ...]}: a text, an axis of --groups and a list of targets')
        if record["template"].count(SLOT) != 1:
            raise ConfigError(f"{where}:{number}: template {record['template']!r} must hold the slot {SLOT} exactly "
                              "once (where the target goes)")
        if not record["template"].replace(SLOT, "").strip():
            raise ConfigError(f"{where}:{number}: template {record['template']!r} has no words besides the slot")
        if not record["targets"]:
            raise ConfigError(f"{where}:{number}: template {record['template']!r} has no targets; list at least one")
        out.append(Template(record["template"], record["axis"], list(dict.fromkeys(t.strip() for t in record["targets"]))))
    if not out:
        raise ConfigError(f"{where} holds no template; give at least one line")
    return out, builtin


# ---- token sequences ---------------------------------------------------------------------------


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def surface_variants(index: Any, text: str) -> list[Variant]:
    """Every distinct token sequence of ``text``, ``" " + text`` and their capitalised forms that the
    corpus tokenizer encodes without unknown tokens, in that order (the first form of each sequence
    names it)."""
    out: dict[tuple[int, ...], str] = {}
    for form in dict.fromkeys((text, " " + text, capitalised(text), " " + capitalised(text))):
        try:
            ids = tuple(int(i) for i in index.encode(form).tolist())
        except QueryError:  # a word the vocabulary lacks: this form cannot occur in the corpus
            continue
        out.setdefault(ids, form)
    return [Variant(form, ids) for ids, form in out.items()]


def resolve_groups(index: Any, groups: str | Path | dict[str, Any]) -> Groups:
    """The groups with every term's variants; a built-in term without a usable variant is dropped (a
    note), a user's term is refused, and so is a group left with no term."""
    spec, builtin = group_spec(groups)
    require_tokenizer(index)
    notes: list[str] = []
    resolved: dict[str, dict[str, list[Term]]] = {}
    for axis, members in spec.items():
        resolved[axis] = {}
        for group, texts in members.items():
            terms = []
            dropped = []
            for text in texts:
                variants = surface_variants(index, text)
                if variants:
                    terms.append(Term(axis, group, text, variants))
                elif builtin:
                    dropped.append(text)
                else:
                    raise unencodable(index, f"term {text!r} of {axis}/{group}", text, "remove it from --groups")
            if dropped:
                notes.append(f"built-in {axis}/{group}: {', '.join(dropped)} dropped (the corpus tokenizer cannot "
                             "encode them)")
            if terms:
                resolved[axis][group] = terms
        if builtin and len(resolved[axis]) < 2:
            notes.append(f"built-in axis {axis} dropped: fewer than two of its groups have a term the corpus "
                         "tokenizer can encode")
            del resolved[axis]
        elif len(resolved[axis]) < len(members):
            empty = [g for g in members if g not in resolved[axis]]
            raise ConfigError(f"group {axis}/{empty[0]} has no term the corpus tokenizer can encode; give it terms of "
                              "the corpus's vocabulary")
    if not resolved:
        raise ConfigError("no axis of the built-in groups has terms the corpus tokenizer can encode; pass --groups "
                          "FILE with terms of the corpus's vocabulary")
    return Groups(resolved, notes)


def resolve_targets(index: Any, targets: str | Path | list[str]) -> tuple[list[Term], list[str]]:
    """Targets with their variants, and notes (built-in targets the tokenizer cannot encode are dropped;
    a user's is refused)."""
    texts, builtin = target_spec(targets)
    require_tokenizer(index)
    out, dropped = [], []
    for text in texts:
        variants = surface_variants(index, text)
        if variants:
            out.append(Term("", "", text, variants))
        elif builtin:
            dropped.append(text)
        else:
            raise unencodable(index, f"target {text!r}", text, "remove it from --targets")
    notes = [f"built-in targets: {len(dropped)} dropped (the corpus tokenizer cannot encode them): "
             f"{', '.join(dropped)}"] if dropped else []
    if not out:
        raise ConfigError("none of the built-in targets can be encoded by the corpus tokenizer; pass --targets FILE "
                          "with words of the corpus's vocabulary")
    return out, notes


def require_tokenizer(index: Any) -> None:
    if index.tokenizer is None:
        raise ConfigError(f"{index.path} has no tokenizer, so terms cannot be encoded; pass a corpus with its "
                          "tokenizer (or --tokenizer for an infini-gram folder)")


def unencodable(index: Any, what: str, text: str, fix: str) -> ConfigError:
    """The one-line error for a term none of whose forms encodes, with the tokenizer's own reason."""
    try:
        index.encode(text)
        reason = "it encodes to unknown tokens"
    except QueryError as error:
        reason = str(error).split(";")[0]
    return ConfigError(f"{what}: the corpus tokenizer cannot encode it ({reason}) in any form "
                       f"({', '.join(repr(f) for f in dict.fromkeys((text, ' ' + text, capitalised(text))))}); {fix}")
