"""What `seethrough serve` answers, as a Python API apart from HTTP: :class:`Explorer`.

Every answer is a plain dict in the shape of the matching CLI command's ``--json`` output (the
library's ``to_dict()``), with fields added beside it, never changed: ``withheld`` (occurrences in
withheld documents, see :mod:`.withhold`), ``offset``/``limit`` of a find page, ``tokens`` (each id
decoded) in count, ``token`` in each next-token row, and ``pieces`` (the snippet or text cut into
decoded pieces, each marked with the clause or spans it belongs to) in find, search and trace, which
is what the page highlights. The limits of :class:`ServeLimits` are checked
here, so the Python API and the server refuse the same things with the same one-line errors.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import QueryError
from ..index.engine import check_deadline, ngram_starts, parse_boolean_query
from .limits import ServeLimits
from .withhold import WithheldDocuments, WithholdingIndex


class NoSuchDocument(QueryError):
    """A document id that is not in the corpus (HTTP 404)."""


class DocumentWithheld(QueryError):
    """A document on the takedown list (HTTP 410)."""


class NotServed(QueryError):
    """An endpoint this server cannot answer as started (membership and generate without --run: HTTP 404)."""


class Explorer:
    """The queries of the corpus explorer over an opened index (``seethrough.index.open_corpus``), with a
    run (its last checkpoint, checked against the corpus) for membership and generation, and documents
    withheld. The model is loaded on first use and shared by both; its calls take turns (one lock)."""

    def __init__(self, index: Any, run: str | Path | None = None, withheld: list[int] | tuple[int, ...] = (),
                 limits: ServeLimits | None = None, device: str = "cpu", threads: int | None = None) -> None:
        self.index = index
        self.limits = limits or ServeLimits()
        self.withheld = WithheldDocuments(index, withheld)
        self.view = WithholdingIndex(index, self.withheld)
        self.run = Path(run) if run is not None else None
        self._target = None
        if run is not None:
            from ..model import resolve_target

            self._target = resolve_target(run)
            self._target.check_corpus(index)  # refused at start, not at the first request
        self._device, self._threads = device, threads
        self._auditor: Any = None
        self._model_lock = threading.Lock()
        self._decoded: dict[int, str] = {}

    def warm_up(self) -> None:
        """Run each kind of query once on one token, so that the compiled kernels are loaded before the
        first request (their first use costs up to a second, which would eat into its deadline)."""
        shard = self.index.corpus.shards[0]
        ids = [int(t) for t in shard.tokens[1:3] if int(t) < self.index.corpus.vocab_size]  # a bigram: rarer
        if not ids:
            return
        self.index.find(ids, limit=1, context=1)
        self.index.ntd(ids[:1])
        self.index.longest_matches(ids)
        self.index.search([[ids]], window=1, limit=1, context=1)

    def load_model(self) -> None:
        """Load the run's model now (a server does at start, so that no query's deadline pays for it)."""
        self._membership_auditor()

    # ---- what is served ------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The corpus, the run, the takedown list's size and the limits, for the page's header."""
        corpus = self.index.corpus
        return {"corpus": str(corpus.path), "corpus_hash": corpus.corpus_hash, "documents": corpus.num_documents,
                "tokens": corpus.num_tokens, "shards": len(corpus.shards), "token_dtype": corpus.token_dtype,
                "vocab_size": corpus.vocab_size, "tokenizer": corpus.tokenizer is not None,
                "run": str(self.run) if self.run is not None else None,
                "checkpoint": self._target.last.to_dict() if self._target is not None else None,
                "withheld_documents": len(self.withheld), "limits": asdict(self.limits), "version": __version__}

    # ---- index queries -------------------------------------------------------------------------------
    def count(self, query: str | list[int]) -> dict[str, Any]:
        """``seethrough count --json``: {count, ids, text?} + tokens, withheld."""
        ids = self._encode(query)
        record: dict[str, Any] = {"count": self.index.count(ids), "ids": ids.tolist()}
        if isinstance(query, str):
            record["text"] = query
        record["tokens"] = self._token_texts(ids)
        record["withheld"] = self.withheld.occurrences(ids)
        return record

    def find(self, query: str | list[int], offset: int = 0, limit: int = 10, context: int = 20) -> dict[str, Any]:
        """``seethrough find --json`` from match ``offset`` on: {count, ids, matches} + offset, limit, withheld.
        ``matches`` are the visible occurrences (outside withheld documents) numbered offset.. in corpus order."""
        self._check_range("offset", offset, 0, self.limits.max_find_offset)
        self._check_range("limit", limit, 0, self.limits.max_find_limit)
        self._check_range("context", context, 0, self.limits.max_context)
        ids = self._encode(query)
        found = self.view.find(ids, limit, context, offset)
        rows = []
        for m in found.matches:
            row = m.to_dict()
            row["pieces"] = self._marked(m.snippet_ids, [(m.match_start, m.match_start + len(ids), 0)])
            rows.append(row)
        return {"count": found.count, "ids": ids.tolist(), "matches": rows, "offset": offset, "limit": limit,
                "withheld": found.excluded}

    def ntd(self, query: str | list[int]) -> dict[str, Any]:
        """``seethrough ntd --json``: {prompt_count, end_of_document, ids, next} + withheld, each row + token.
        ``prompt_count`` is the index's; the next tokens are those of the visible occurrences, and each
        ``prob`` is over them (prompt_count - withheld)."""
        ids = self._encode(query, allow_empty=True)
        result = self.index.ntd(ids)
        record = result.to_dict()
        hidden_next, hidden_ends, hidden = self.withheld.next_tokens(ids) if len(self.withheld) else ({}, 0, 0)
        if hidden:
            counts = {t: c - hidden_next.get(t, 0) for t, c in result.counts.items()}
            visible = result.prompt_count - hidden
            record["end_of_document"] = result.end_of_document - hidden_ends
            record["next"] = [{"id": t, "count": c, "prob": c / visible}
                              for t, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c > 0]
        for row in record["next"]:
            row["token"] = self._token_text(row["id"])
        record["withheld"] = hidden
        return record

    def search(self, query: str | list[int], window: int = 100, limit: int = 10, context: int = 20) -> dict[str, Any]:
        """``seethrough search --json`` of a boolean query (``"a b AND c OR d"``; ids: one n-gram):
        {count, documents, approx, matches} + withheld (hits in withheld documents, which are not listed)."""
        self._check_range("window", window, 0, self.limits.max_window)
        self._check_range("limit", limit, 0, self.limits.max_find_limit)
        self._check_range("context", context, 0, self.limits.max_context)
        if isinstance(query, str):
            self._check_chars(query)
            clauses = parse_boolean_query(query)
        else:
            clauses = [[query]]
        terms = sum(len(clause) for clause in clauses)
        if terms > self.limits.max_boolean_terms:
            raise QueryError(f"the boolean query has {terms} n-grams, over this server's limit of "
                             f"{self.limits.max_boolean_terms}; use fewer AND / OR terms")
        encoded = [[self._encode(term) for term in clause] for clause in clauses]
        hidden = self.withheld.boolean_hits(encoded, window) if len(self.withheld) else 0
        result = self.index.search(encoded, window=window, limit=limit + hidden, context=context)
        record = result.to_dict()
        record["matches"] = []
        for m in [m for m in result.matches if m.doc not in self.withheld][:limit]:
            row = m.to_dict()
            snippet = np.asarray(m.snippet_ids, dtype=np.int64)
            marks = [(start, start + len(term), c) for c, clause in enumerate(encoded) for term in clause
                     for start in ngram_starts(snippet, term).tolist()]
            row["pieces"] = self._marked(m.snippet_ids, marks)
            record["matches"].append(row)
        record["withheld"] = hidden
        return record

    def document(self, doc: int) -> dict[str, Any]:
        """``seethrough document --json``: {doc, text, token_ids, metadata, path, line}."""
        if isinstance(doc, bool) or not isinstance(doc, int) or not 0 <= doc < self.index.num_documents:
            raise NoSuchDocument(f"document {doc!r} does not exist; the corpus has documents "
                                 f"0..{self.index.num_documents - 1}")
        if doc in self.withheld:
            raise DocumentWithheld(f"document {doc} is withheld by this server's takedown list (--withhold)")
        d = self.index.document(doc)
        return {"doc": d.index, "text": d.text, "token_ids": d.token_ids, "metadata": d.metadata, "path": d.path,
                "line": d.line}

    # ---- audits ------------------------------------------------------------------------------------------
    def trace(self, text: str, settings: Any = None) -> dict[str, Any]:
        """``seethrough trace --text --json``: spans found in the corpus, their (visible) documents, novelty."""
        from ..audit.trace import trace

        ids = self._encode_text(text)
        return self._with_pieces(trace(self.view, ids, self._checked_settings(settings)).to_dict(), ids)

    def membership(self, text: str) -> dict[str, Any]:
        """``seethrough membership --json`` with the run: the model's signals and the index's evidence."""
        self._encode_text(text, unknown_words=True)  # the model reads any text, as `seethrough membership`
        auditor = self._membership_auditor()
        check_deadline()
        with self._model_lock:
            record = auditor.score([text])[0]
        return record.to_dict()

    def generate(self, prompt: str, max_new_tokens: int = 64, settings: Any = None) -> dict[str, Any]:
        """``seethrough trace --prompt --json``: the run's greedy continuation (cut at end-of-document), traced."""
        from ..audit.trace import trace
        from ..model import greedy_continuations

        self._check_range("max_new_tokens", max_new_tokens, 1, self.limits.max_new_tokens)
        settings = self._checked_settings(settings)
        prompt_ids = self._encode_text(prompt, allow_empty=True, unknown_words=True)
        model = self._membership_auditor().model
        bos, eos = model.config.bos_token_id, model.config.eos_token_id
        check_deadline()
        with self._model_lock:
            ids = greedy_continuations(model, [([bos] if bos is not None else []) + prompt_ids], max_new_tokens)[0]
        if eos in ids:
            ids = ids[:ids.index(eos)]  # the response ends at the end-of-document token
        if not ids:
            raise QueryError("the model ended its response at once (end-of-document token); try another prompt")
        result = trace(self.view, ids, settings)
        result.prompt, result.generated = prompt, True
        return self._with_pieces(result.to_dict(), ids)

    # ---- helpers ----------------------------------------------------------------------------------------
    def _membership_auditor(self) -> Any:
        if self._target is None:
            raise NotServed("this server has no model: start it with --run RUN for membership and generation")
        with self._model_lock:
            if self._auditor is None:
                from ..audit.membership import MembershipAuditor

                self._auditor = MembershipAuditor(self._target, self.index, threads=self._threads,
                                                  device=self._device)
        return self._auditor

    def _checked_settings(self, settings: Any) -> Any:
        from ..audit.trace import TraceSettings

        settings = settings if settings is not None else TraceSettings()
        if not isinstance(settings, TraceSettings):
            try:
                settings = TraceSettings(**settings)
            except TypeError:
                raise QueryError(f"trace settings {sorted(settings)}: use the fields of TraceSettings") from None
        self._check_range("docs_per_span", settings.docs_per_span, 0, self.limits.max_docs_per_span)
        self._check_range("context", settings.context, 0, self.limits.max_context)
        return replace(settings)

    def _encode(self, query: Any, allow_empty: bool = False) -> np.ndarray:
        if isinstance(query, str):
            self._check_chars(query)
        empty = allow_empty and (isinstance(query, str) and not query or isinstance(query, list) and not query)
        ids = np.zeros(0, dtype=np.int64) if empty else self.index.encode(query)
        if len(ids) > self.limits.max_query_tokens:
            raise QueryError(f"the query has {len(ids)} tokens, over this server's limit of "
                             f"{self.limits.max_query_tokens}; shorten it")
        return ids

    def _encode_text(self, text: Any, allow_empty: bool = False, unknown_words: bool = False) -> list[int]:
        """A POSTed text's ids: text only, within the token limit. ``unknown_words``: as the tokenizer
        reads them (a prompt, as `seethrough trace --prompt` does), else refused as every query is."""
        if not isinstance(text, str):
            raise QueryError(f"the text must be a string, not {type(text).__name__}")
        if not text and not allow_empty:
            raise QueryError("empty text: paste some text to look for")
        if unknown_words:
            ids = self.index.corpus.require_tokenizer().encode(text) if text else []
        else:
            ids = self.index.encode(text).tolist()
        if len(ids) > self.limits.max_text_tokens:
            raise QueryError(f"the text has {len(ids)} tokens, over this server's limit of "
                             f"{self.limits.max_text_tokens}; shorten it")
        return ids

    def _check_chars(self, text: str) -> None:
        if len(text) > self.limits.max_query_chars:
            raise QueryError(f"the query has {len(text)} characters, over this server's limit of "
                             f"{self.limits.max_query_chars}; shorten it")

    @staticmethod
    def _check_range(name: str, value: Any, low: int, high: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise QueryError(f"{name}={value!r}: give a whole number from {low} to {high} (this server's limit)")

    def _with_pieces(self, record: dict[str, Any], ids: list[int]) -> dict[str, Any]:
        """A trace of ``ids`` with its text cut at every span's edges: ``pieces`` {text, start, end, spans
        (the indexes of the spans holding the piece)}."""
        spans = [(s["start"], s["end"]) for s in record["spans"]]
        cuts = sorted({0, len(ids), *(a for a, _ in spans), *(b for _, b in spans)})
        inside = [[i for i, (s, e) in enumerate(spans) if s <= a and b <= e] for a, b in zip(cuts, cuts[1:])]
        texts = decoded_pieces(self.index.tokenizer, ids, cuts, [bool(i) for i in inside])
        record["pieces"] = [{"text": text, "start": a, "end": b, "spans": held}
                            for text, a, b, held in zip(texts, cuts, cuts[1:], inside)]
        return record

    def _marked(self, ids: list[int], marks: list[tuple[int, int, int]]) -> list[dict[str, Any]] | None:
        """``ids`` decoded in pieces, each {text, clause}: the clause of the mark it lies in (the first
        when marks overlap), or None outside every mark."""
        tok = self.index.tokenizer
        if tok is None:
            return None
        cuts = sorted({0, len(ids), *(min(max(a, 0), len(ids)) for a, _, _ in marks),
                       *(min(max(b, 0), len(ids)) for _, b, _ in marks)})
        clauses = [next((c for s, e, c in marks if s <= a and b <= e), None) for a, b in zip(cuts, cuts[1:])]
        texts = decoded_pieces(tok, ids, cuts, [c is not None for c in clauses])
        return [{"text": text, "clause": clause} for text, clause in zip(texts, clauses)]

    def _token_texts(self, ids: np.ndarray) -> list[str] | None:
        return [self._token_text(i) for i in ids.tolist()] if self.index.tokenizer is not None else None

    def _token_text(self, token: int) -> str | None:
        """One token decoded, remembered: a next-token list decodes up to the whole vocabulary each time."""
        text = self._decoded.get(token)
        if text is None and self.index.tokenizer is not None:
            text = self._decoded[token] = self.index.tokenizer.decode([token])
        return text


def decoded_pieces(tok: Any, ids: list[int], cuts: list[int], marked: list[bool] | None = None) -> list[str]:
    """The text of ``ids[cuts[k]:cuts[k + 1]]`` for each k, such that the pieces join into the decoded
    whole: each piece is what decoding one more piece adds (decoders join words with spaces or keep
    them in tokens; this needs neither to be known). Where a decoder's prefix is not a prefix of the
    longer text (a multi-byte character cut in two), the piece is decoded alone. ``marked``: which pieces
    are highlighted; whitespace at the start of one after an unmarked piece moves to that piece, so a
    highlight starts on the word."""
    if tok is None:
        return [" ".join(map(str, ids[a:b])) for a, b in zip(cuts, cuts[1:])]
    pieces, before = [], ""
    for a, b in zip(cuts, cuts[1:]):
        upto = tok.decode(ids[:b])
        if upto.startswith(before):
            pieces.append(upto[len(before):])
        else:
            pieces.append(tok.decode(ids[a:b]))
        before = upto
    for k in range(1, len(pieces)):  # the space a decoder puts before a highlight belongs outside it
        if marked is None or not marked[k] or marked[k - 1]:
            continue
        text = pieces[k]
        stripped = text.lstrip()
        pieces[k - 1] += text[:len(text) - len(stripped)]
        pieces[k] = stripped
    return pieces

