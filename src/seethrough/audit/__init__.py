"""Audits over a run's data order, its checkpoints and the corpus index."""

from .seen import Seen, seen_before

__all__ = ["Seen", "seen_before"]
