"""Control at deployment: erase a concept (LEACE) or steer a behaviour, and measure what it costs.

    from seethrough.audit.control import EraseSettings, erase_model, write_eraser
    report = erase_model("run/", read_probe_data("gender.jsonl"), EraseSettings(layers="1-3"), corpus=corpus)
    write_eraser(report, "eraser/")          # eraser.json, layer-L.safetensors, summary.json
    target = resolve_target("run/", intervention="eraser/")   # every audit then runs erased

    from seethrough.audit.control import SteerSettings, read_pairs, steer_model, write_vector
    report = steer_model("run/", read_pairs("pairs.jsonl"), SteerSettings(layers="2", multipliers="0,4"))
    write_vector(report, "vector/")          # vector.json, layer-L.safetensors, summary.json

    from seethrough.audit.control import generate_text
    generate_text("run/", "as a nurse", erase="eraser/", steer=("vector/", 4.0)).to_dict()

- ``erase``: LEACE (concept-erasure) fitted layer by layer on already-erased states; the report (fresh
  probe vs majority rate, edit norm, cross-entropy, bias shares, eval scores before/after).
- ``steer``: contrastive activation addition from a pairs file; behaviour against multiplier per
  layer with intervals, perplexity on neutral text, cosine to ``seethrough probe`` directions.
- ``generate``: greedy continuation of a prompt with an eraser and/or a steering vector on.
- ``common``: the checkpoint, layer lists, cross-entropy on corpus text, intervals of a mean.

The hooks themselves are the model layer's (``seethrough.model.interventions``).
"""

from .erase import EraseReport, EraseSettings, erase_model, fit_erasers, fresh_probe, write_eraser
from .generate import Generation, generate_text
from .steer import SteerPair, SteerReport, SteerSettings, parse_pairs, read_pairs, steer_model, write_vector

__all__ = ["EraseReport", "EraseSettings", "Generation", "SteerPair", "SteerReport", "SteerSettings", "erase_model",
           "fit_erasers", "fresh_probe", "generate_text", "parse_pairs", "read_pairs", "steer_model", "write_eraser",
           "write_vector"]
