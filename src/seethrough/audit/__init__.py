"""Audits over a run's data order, its checkpoints and the corpus index: what was seen when,
what the model memorized, whether a text was a member, where a generation comes from, whether an
answer was stated, derivable or unknowable (facts), and the audits in sub-packages (bias, probe,
detect)."""

from .seen import Seen, seen_before

__all__ = ["Seen", "seen_before"]
