"""Loading a causal LM on the device and dtype asked for (the weights hash is in ``weights``)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from ..errors import ModelError
from .target import Checkpoint

DTYPES = ("float32", "bfloat16", "float16")
"""Weight dtypes a model may be loaded in (float32 is the default and the only one bit-exact on CPU)."""

IMPLEMENTATIONS = ("transformers", "auto")
"""Which code computes the model: ``transformers`` (``AutoModelForCausalLM``, any architecture), or
``auto``: ``neox.NeoXForCausalLM`` (plain torch, the same logits to the bit, 2.8 s less start-up) for a
GPT-NeoX folder it reads completely, transformers for any other."""


def resolve_device(device: str) -> str:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (cuda when available); a device that is not there is refused."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ModelError(f"--device {device}: no CUDA device is available here; use --device cpu")
        if ":" in device and int(device[5:]) >= torch.cuda.device_count():
            raise ModelError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
        return device
    raise ModelError(f"--device {device!r} is not a device; use cpu, cuda, cuda:N or auto")


def load_model(source: Any, device: str = "cpu", dtype: str = "float32", threads: int | None = None,
               implementation: str = "transformers") -> Any:
    """A causal LM from a local folder or a ``Checkpoint``, in eval mode, on ``device`` in ``dtype``;
    ``implementation``: see ``IMPLEMENTATIONS`` (``auto`` answers the forward pass an evaluation
    needs, not transformers' whole interface: ``generate``, ``output_hidden_states``, 2-D masks).

    A run's checkpoint is checked against the weights hash its run recorded, so a damaged or replaced
    checkpoint is refused rather than audited. A checkpoint's ``intervention`` (an eraser or steering
    vector) is installed on the returned model, after checking it was fitted on these weights. ``threads``: torch's CPU threads; by default one per
    core that other processes leave free (see ``_threads``)."""
    import torch

    from .._files import sha256_file
    from .._threads import default_threads
    from .weights import combine_weights_hashes, weight_files

    checkpoint = source if isinstance(source, Checkpoint) else Checkpoint(Path(source))
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ModelError(f"--threads {threads!r}: give at least 1 CPU thread, or leave it out for the default")
    if dtype not in DTYPES:
        raise ModelError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    if implementation not in IMPLEMENTATIONS:
        raise ModelError(f"implementation {implementation!r} is not one of {', '.join(IMPLEMENTATIONS)}")
    where = resolve_device(device)
    if checkpoint.recorded_sha256 is not None:
        weights = checkpoint.path / "model.safetensors"
        if not weights.exists():
            raise ModelError(f"checkpoint {checkpoint.path} has no model.safetensors (its run recorded one); restore "
                             "it from a copy or retrain that step")
        if sha256_file(weights) != checkpoint.recorded_sha256:
            raise ModelError(f"checkpoint {checkpoint.path} does not match the weights hash its run recorded; "
                             "it was damaged or replaced: restore it from a copy or retrain that step")
        if weight_files(checkpoint.path) == [weights]:  # the folder's weights hash follows from the file's just
            # checked: remembered on the checkpoint, so the provenance and the eraser check read the file once
            checkpoint.__dict__.setdefault("weights_sha256",
                                           combine_weights_hashes({weights.name: checkpoint.recorded_sha256}))
    if not (checkpoint.path / "config.json").exists():
        raise ModelError(f"{checkpoint.path} is not a model folder (no config.json)")
    if checkpoint.intervention is not None:  # refused before any weights are read
        checkpoint.intervention.check_model(checkpoint.weights_sha256, f"{checkpoint.path}")
        checkpoint.intervention.check_unchanged()
    torch.set_num_threads(threads or default_threads())
    model = _plain_model(checkpoint.path, getattr(torch, dtype)) if implementation == "auto" else None
    if model is None:
        model = _transformers_model(checkpoint.path, getattr(torch, dtype))
    model = model.to(where).eval()
    if checkpoint.intervention is not None:
        checkpoint.intervention.install(model)  # the hooks stay on the returned model
    return model


def _plain_model(folder: Path, dtype: Any) -> Any:
    """The plain-torch GPT-NeoX of ``folder``, or None when it is not one that module reads completely."""
    from . import neox

    config = neox.read_config(folder)
    return neox.load_neox(folder, config, dtype) if config is not None else None


def _transformers_model(folder: Path, dtype: Any) -> Any:
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        return AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
    except (OSError, ValueError, SafetensorError) as error:  # SafetensorError: a damaged weights file
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelError(f"cannot load model {folder}: {first}") from None


def forward_arguments(model: Any) -> tuple[str, dict[str, int]]:
    """(the name of the KV-cache argument, extra arguments that keep only the last position's logits).

    transformers 5 calls the cache ``cache``, earlier versions ``past_key_values``; ``logits_to_keep``
    exists from 4.45 and spares the vocabulary projection of every position but the last."""
    parameters = inspect.signature(model.forward).parameters
    cache = "cache" if "cache" in parameters else "past_key_values"
    return cache, ({"logits_to_keep": 1} if "logits_to_keep" in parameters else {})
