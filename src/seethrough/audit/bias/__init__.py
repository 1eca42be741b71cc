"""Social bias: what the data says about groups, what the model learned, and whether it amplifies it.

    from seethrough.audit.bias import measure_data_bias, measure_model_bias, summarize_bias_benchmarks
    data = measure_data_bias(index, groups="builtin", targets="builtin")        # counts, co-occurrence, sentiment
    write_bias_data(data, "out/")                                               # bias_data.json, CSVs, plots
    model = measure_model_bias("run/", index, groups="builtin", templates="builtin")  # model vs data shares
    write_bias_model(model, "out/")                                             # bias_model.json, CSVs, plot
    summarize_bias_benchmarks(eval_result)                                      # CrowS-Pairs / BBQ per category

- ``terms``: the built-in groups, targets and templates (with their limits), reading user files, and
  the surface variants (token sequences) every term is matched as.
- ``counting``: exact occurrence and co-occurrence counts from the index (the definitions).
- ``data``: ``bias data``: counts, shares, PMI, log-odds with an informative Dirichlet prior, sentiment.
- ``model``: ``bias model``: model against data shares per context, correlation, greedy amplification.
- ``benchmarks``: CrowS-Pairs and BBQ summaries (per category, bootstrap intervals, caveats) from an
  ``EvalResult``'s samples.
- ``stats``: bootstrap intervals and correlations.
"""

from .benchmarks import CAVEATS, summarize_bias_benchmarks
from .data import BiasDataReport, BiasDataSettings, measure_data_bias, write_bias_data
from .model import BiasModelReport, measure_model_bias, write_bias_model
from .terms import ADJECTIVES, GROUPS, OCCUPATIONS, TEMPLATES

__all__ = ["ADJECTIVES", "CAVEATS", "GROUPS", "OCCUPATIONS", "TEMPLATES", "BiasDataReport", "BiasDataSettings",
           "BiasModelReport", "measure_data_bias", "measure_model_bias", "summarize_bias_benchmarks",
           "write_bias_data", "write_bias_model"]
