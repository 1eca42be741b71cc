"""What the model believes inside: probes of hidden states per layer, and the logit and tuned lenses.

    from seethrough.audit.probe import ProbeSettings, probe_model, read_probe_data, write_probe
    report = probe_model("run/", read_probe_data("pairs.jsonl"), ProbeSettings(layers="all"))
    write_probe(report, "out/")            # probe.json, probe.png, directions.safetensors + .json
    directions = load_directions("out/")   # for erasure and steering: directions.direction(layer, method)

    from seethrough.audit.probe import LensSettings, measure_lenses, write_lens
    report = measure_lenses("run/", corpus=open_token_corpus("corpus/"), texts=["some text"])
    write_lens(report, "out/")             # lens.json, lens.png, pictures, tuned_lens/ (reuse: lens="out/tuned_lens")

Layer numbers everywhere are transformers' ``hidden_states`` numbers: 0 the embeddings, L (1..n) the
residual stream leaving block L, the last one (n) taken after the model's final norm.

- ``data``: the ``--data`` file (statements or contrast pairs) and the fit/test split (groups, transfer).
- ``features``: last-token hidden states per layer (through ``model.last_token_hidden_states``), the
  check that a model exposes them, and the per-side normalisation of contrast pairs.
- ``methods``: logistic regression, difference of means, LDA, CCS, VINC/CRC, a random direction.
- ``metrics``: accuracy, AUROC, ECE, bootstrap intervals.
- ``report``: ``probe_model`` (a ``ProbeReport``), the model's own answers beside the probes, writing,
  and the saved directions.
- ``lens``: the logit lens and the tuned lens (train, save, load); ``lens_report``: ``measure_lenses``
  (held-out KL and cross-entropy per layer, pictures of the top token) and writing.
- ``plots``: the figures of both reports.
"""

from .data import PAIRS, STATEMENTS, ProbeData, ProbeItem, parse_probe_records, read_probe_data, split_items
from .features import SideNormalizer, extract_features, hidden_layers, parse_layers
from .lens import LogitLens, load_tuned_lens, new_tuned_lens, save_tuned_lens, train_tuned_lens
from .lens_report import LensReport, LensSettings, measure_lenses, write_lens
from .methods import METHODS, FittedProbe, ccs_loss, fit_probe, parse_methods
from .metrics import accuracy, auroc, bootstrap_intervals, expected_calibration_error
from .report import (ProbeDirections, ProbeReport, ProbeSettings, Prober, evaluate_probes, fit_probes,
                     load_directions, probe_model, save_directions, write_probe)

__all__ = ["METHODS", "PAIRS", "STATEMENTS", "FittedProbe", "LensReport", "LensSettings", "LogitLens",
           "ProbeData", "ProbeDirections", "ProbeItem", "ProbeReport", "ProbeSettings", "Prober", "SideNormalizer",
           "accuracy", "auroc", "bootstrap_intervals", "ccs_loss", "evaluate_probes", "expected_calibration_error",
           "extract_features", "fit_probe", "fit_probes", "hidden_layers", "load_directions", "load_tuned_lens",
           "measure_lenses", "new_tuned_lens", "parse_layers", "parse_methods", "parse_probe_records",
           "probe_model", "read_probe_data", "save_directions", "save_tuned_lens", "split_items",
           "train_tuned_lens", "write_lens", "write_probe"]
