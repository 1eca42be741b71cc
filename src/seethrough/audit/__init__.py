"""Audits over a run's data order, its checkpoints and the corpus index: what was seen when,
what the model memorized, whether a text was a member."""

from .seen import Seen, seen_before

__all__ = ["Seen", "seen_before"]
