"""Hidden states of 10,000 statements for probing: seethrough's extraction against plain transformers loops.

What is timed, each reading the last token's hidden state at every layer (0..n):

- **seethrough**: ``audit.probe.extract_features`` (through ``model.last_token_hidden_states``):
  statements encoded in one tokenizer call, grouped by token length, ``--batch-size`` of equal length
  per forward pass, nothing padded;
- **plain loop** (the named baseline): one ``model(**tokenizer(text, return_tensors="pt"),
  output_hidden_states=True)`` per statement, as a plain transformers script does;
- **padded batches**: ``--batch-size`` statements in file order, right-padded with an attention mask,
  the last real token's state picked out: the usual batched transformers loop;
- **last-logits variant**: the seethrough loop with ``logits_to_keep=1`` passed to the model, so the
  vocabulary projection runs on each row's last position only (a proposed change to
  ``model.last_token_hidden_states``; measured here to size it, not shipped).

Every method's states must equal the plain loop's within 1e-4 (float32; printed: the largest
difference). The model is a GPT-NeoX of Pythia-14M's shape (6 layers, width 128) with Pythia's
50,304-word vocabulary, random weights (speed does not depend on them), over a word-level tokenizer;
statements are 6 to 20 words. Medians of ``--repeats`` interleaved runs after a warm-up on the first 100 statements; torch threads
fixed by ``--threads``.

    python benchmarks/probe_extraction.py [--statements 10000] [--threads 2] [--batch-size 64]
                                          [--model-size pythia-14m] [--repeats 3] [--skip-padded]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--statements", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model-size", default="pythia-14m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-padded", action="store_true", help="time only seethrough and the plain loop")
    args = parser.parse_args()

    import numpy as np
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from seethrough.audit.probe import extract_features, parse_probe_records
    from seethrough.model.generation import batches_by_length
    from seethrough.train.model import build_model

    torch.set_num_threads(args.threads)
    rng = random.Random(0)
    words = [f"w{i}" for i in range(2000)]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(6, 20))) for _ in range(args.statements)]
    data = parse_probe_records([{"text": t, "label": k % 2} for k, t in enumerate(texts)])
    vocab = {"<|endoftext|>": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.WordPiece(prefix="##")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    with tempfile.TemporaryDirectory() as tmp:
        build_model(args.model_size, 50304, 2048, 0, seed=0).save_pretrained(Path(tmp) / "m")
        from seethrough.model import load_model

        model = load_model(Path(tmp) / "m", threads=args.threads)
    n = model.config.num_hidden_layers
    layers = list(range(n + 1))

    def seethrough() -> np.ndarray:
        return extract_features(model, tokenizer, data, layers, batch_size=args.batch_size)[:, 0]

    def plain_loop() -> np.ndarray:
        out = np.empty((len(texts), n + 1, model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for i, text in enumerate(texts):
                states = model(**tokenizer(text, return_tensors="pt"), output_hidden_states=True).hidden_states
                out[i] = torch.stack([s[0, -1] for s in states]).numpy()
        return out

    def padded() -> np.ndarray:
        out = np.empty((len(texts), n + 1, model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), args.batch_size):
                batch = tokenizer(texts[start:start + args.batch_size], return_tensors="pt", padding=True)
                states = model(**batch, output_hidden_states=True).hidden_states
                last = batch["attention_mask"].sum(1) - 1
                rows = torch.arange(len(last))
                out[start:start + len(last)] = torch.stack([s[rows, last] for s in states], dim=1).numpy()
        return out

    def last_logits_only() -> np.ndarray:
        rows = tokenizer(texts, add_special_tokens=False)["input_ids"]
        out = np.empty((len(texts), n + 1, model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for group in batches_by_length(rows, args.batch_size):
                ids = torch.tensor([rows[i] for i in group])
                states = model(input_ids=ids, output_hidden_states=True, logits_to_keep=1).hidden_states
                out[group] = torch.stack([s[:, -1] for s in states], dim=1).numpy()
        return out

    methods = {"seethrough": seethrough, "plain_loop": plain_loop, "last_logits_only": last_logits_only}
    if not args.skip_padded:
        methods["padded_batches"] = padded
    everything = (texts, data)
    texts, data = texts[:100], parse_probe_records([{"text": t, "label": k % 2} for k, t in enumerate(texts[:100])])
    for fn in methods.values():  # warm-up on the first 100
        fn()
    texts, data = everything
    times: dict[str, list[float]] = {name: [] for name in methods}
    outputs: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            began = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - began)
    differences = {name: float(np.abs(out - outputs["plain_loop"]).max()) for name, out in outputs.items()}
    median = {name: statistics.median(t) for name, t in times.items()}
    tokens = sum(len(t.split()) for t in texts)
    result = {"statements": len(texts), "tokens": tokens, "layers": n + 1, "model_size": args.model_size,
              "vocabulary": 50304, "threads": args.threads, "batch_size": args.batch_size, "repeats": args.repeats,
              "seconds": {k: round(v, 3) for k, v in median.items()},
              "speedup_vs_plain_loop": {k: round(median["plain_loop"] / v, 2) for k, v in median.items()},
              "max_abs_difference_vs_plain_loop": differences,
              "same_numbers": all(d <= 1e-4 for d in differences.values())}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
