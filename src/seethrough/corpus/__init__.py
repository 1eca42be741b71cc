"""Text collections in, token shards and a manifest out; read access to the shards.

Public API:

- :func:`build_corpus` (``seethrough corpus build``) with :class:`CorpusBuildConfig`
- :func:`open_token_corpus` -> :class:`TokenCorpus` (documents, shards, tokenizer; ``verify_hashes=True``
  re-hashes every file instead of trusting unchanged ones)
- :func:`verify_corpus` (``seethrough corpus verify``, without the index)
- :func:`load_tokenizer`

The corpus layer knows nothing of indexes; queries live in :mod:`seethrough.index`.
"""

from .build import BuildProgress, CorpusBuildConfig, build_corpus, corpus_hash
from .sources import SourceDocument, expand_inputs, read_documents
from .store import Document, Shard, TokenCorpus, open_token_corpus, verify_corpus
from .tokenizer import LoadedTokenizer, load_tokenizer

__all__ = [
    "BuildProgress", "CorpusBuildConfig", "Document", "LoadedTokenizer", "Shard", "SourceDocument",
    "TokenCorpus", "build_corpus", "corpus_hash", "expand_inputs", "load_tokenizer", "open_token_corpus",
    "read_documents", "verify_corpus",
]
