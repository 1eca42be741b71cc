"""Compile each lm-eval prompt template once per evaluation instead of once per use.

lm-eval renders every ``doc_to_text`` / ``doc_to_target`` / ``doc_to_choice`` template through
``jinja2.Environment.from_string``, which parses and compiles the template on every call: for a
3-shot multiple-choice task that is ~16 compilations per item, and measured here it was more
than half of a whole ``simple_evaluate`` call with a Pythia-70M-sized model on CPU (3.9 of 7.5 s
for 300 items). A compiled jinja template renders the same text for the same document, so
memoizing the compilation by template string changes no prompt; it is switched on only inside
``compiled_templates()`` and restored afterwards.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator


@contextlib.contextmanager
def compiled_templates() -> Iterator[None]:
    """Within the block, lm-eval's ``apply_template`` reuses compiled templates (same output)."""
    from lm_eval import utils as lm_utils

    original = lm_utils.apply_template
    if getattr(original, "_seethrough_memoized", False):  # nested: the outer block already did it
        yield
        return
    environment = lm_utils.env
    compile_template = functools.lru_cache(maxsize=4096)(environment.from_string)

    def apply_template(template: str, doc: dict) -> str:
        return compile_template(template).render(**doc)

    apply_template._seethrough_memoized = True  # type: ignore[attr-defined]
    lm_utils.apply_template = apply_template
    try:
        yield
    finally:
        lm_utils.apply_template = original
