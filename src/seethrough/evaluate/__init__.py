"""Evaluation with lm-evaluation-harness: seethrough's backend, records with provenance, contamination.

Importing this package needs ``lm_eval`` (the ``eval`` extra)."""
