"""Errors that reach a user as one line: what is wrong and what to do about it.

Library code raises these; the CLI prints ``str(error)`` and exits non-zero, never a traceback.
"""


class SeethroughError(Exception):
    """Base class: the message is one line naming the problem and the fix."""


class InputError(SeethroughError):
    """An input file or line that cannot be read as documents."""


class TokenizerError(SeethroughError):
    """A tokenizer that cannot be loaded or does not match the corpus."""


class CorpusError(SeethroughError):
    """A corpus folder that is missing, incomplete, corrupted or built otherwise than expected."""


class IndexNotBuiltError(CorpusError):
    """A query needs the suffix arrays and the corpus has none (or they belong to another corpus)."""


class QueryError(SeethroughError):
    """A query that cannot be answered as given (empty, too long, ids outside the vocabulary)."""


class ConfigError(SeethroughError):
    """A configuration value or file that cannot be used (names the flag or field to fix)."""


class RunError(SeethroughError):
    """A run folder that is missing, incomplete, or does not match what is asked of it."""


class ModelError(SeethroughError):
    """A model, checkpoint or model folder that cannot be resolved, loaded, or used with the data given."""
