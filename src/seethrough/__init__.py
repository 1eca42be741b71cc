"""seethrough: open, inspectable language models.

The first layer answers "what exactly did the model read?":

    import seethrough
    seethrough.build_corpus(["data.jsonl"], "tokenizer.json", "corpus/")
    seethrough.build_index("corpus/")
    corpus = seethrough.open_corpus("corpus/")
    corpus.count("the cat sat")            # exact occurrences
    corpus.find("the cat sat", limit=5)    # where, in corpus order
    corpus.maximal_spans(some_text)        # what of a text is copied verbatim

Heavy modules load on first use, so ``import seethrough`` stays cheap.
"""

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (ConfigError, CorpusError, IndexNotBuiltError, InputError, ModelError, QueryError, RunError,
                     SeethroughError, TokenizerError)

if TYPE_CHECKING:
    from .corpus import CorpusBuildConfig, build_corpus, open_token_corpus
    from .audit import seen_before
    from .index import IndexedCorpus, build_index, open_corpus, verify
    from .train import TrainConfig, open_run

_LAZY = {
    "build_corpus": "corpus", "CorpusBuildConfig": "corpus", "open_token_corpus": "corpus",
    "load_tokenizer": "corpus",
    "build_index": "index", "open_corpus": "index", "IndexedCorpus": "index", "verify": "index",
    "open_run": "train", "TrainConfig": "train", "seen_before": "audit",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'seethrough' has no attribute {name!r}")


__all__ = ["ConfigError", "CorpusError", "IndexNotBuiltError", "InputError", "ModelError", "QueryError", "RunError",
           "SeethroughError", "TokenizerError",
           "__version__", *_LAZY]
