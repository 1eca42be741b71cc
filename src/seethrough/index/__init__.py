"""Exact queries over a corpus through suffix arrays (infini-gram's on-disk format).

Public API:

- :func:`build_index` (``seethrough index build``)
- :func:`open_corpus` -> :class:`IndexedCorpus` with ``count``, ``doc_freq``, ``find``, ``prob``,
  ``infgram_prob`` and ``longest_matches``, each with its batched form (``count_many``, ...; the
  single form is the batch of one), plus ``ntd``, ``positions``, ``maximal_spans``, ``search``
  (boolean) and ``document(i)``
- :func:`parse_boolean_query`: ``"a b AND c OR d"`` -> the clauses ``search`` takes
- :func:`verify` (``seethrough corpus verify``): corpus and index files re-hashed

The index serves any corpus: it knows nothing of training or auditing.
"""

from pathlib import Path
from typing import Any

from .build import build_index, check_index
from .engine import (BooleanResult, FindResult, IndexedCorpus, Match, NextTokenDistribution, NgramProb, Span,
                     open_corpus, parse_boolean_query)


def verify(path: str | Path) -> dict[str, Any]:
    """Re-hash every file of a corpus and, when built, of its index; raises on the first mismatch."""
    from ..corpus.store import open_token_corpus
    from .build import read_index_manifest

    corpus = open_token_corpus(path)
    files = corpus.verify()
    index = read_index_manifest(corpus.path)
    if index is not None:
        files += sorted(check_index(corpus, full=True)["tables"])
    return {"corpus": str(corpus.path), "corpus_hash": corpus.corpus_hash, "index": index is not None,
            "files_checked": files}


__all__ = ["BooleanResult", "FindResult", "IndexedCorpus", "Match", "NextTokenDistribution", "NgramProb", "Span",
           "build_index", "check_index", "open_corpus", "parse_boolean_query", "verify"]
