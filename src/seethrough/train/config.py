"""Training configuration: one typed dataclass; each field's ``help`` is also its CLI help.

A TOML file (``--config``) sets any field by name; command-line flags override the file. The
resolved configuration is written into the run manifest, and a resumed run must match it except in
the fields listed in ``MAY_CHANGE_ON_RESUME``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class TrainConfig:
    steps: int = field(default=100, metadata=_help(
        "Total optimizer steps to reach (also when resuming: the run continues up to this step)."))
    batch_size: int = field(default=32, metadata=_help(
        "Sequences per optimizer step, over all processes and accumulation micro-steps together."))
    seq_len: int = field(default=64, metadata=_help("Tokens per training sequence (rows hold seq_len + 1)."))
    grad_accum: int = field(default=1, metadata=_help(
        "Micro-steps per optimizer step; batch_size must divide by grad_accum x processes."))
    model_size: str = field(default="small", metadata=_help(
        "tiny, small, or a Pythia shape: pythia-14m, pythia-70m, pythia-160m, ..., pythia-12b."))
    lr: float = field(default=2e-3, metadata=_help("Peak learning rate (AdamW)."))
    min_lr_ratio: float = field(default=0.1, metadata=_help("The cosine decays to lr x this ratio."))
    warmup_steps: int | None = field(default=None, metadata=_help(
        "Linear warmup steps (default: 5% of lr_decay_steps)."))
    lr_decay_steps: int | None = field(default=None, metadata=_help(
        "Length of the cosine schedule (default: steps at the first launch, then kept on resume)."))
    weight_decay: float = field(default=0.1, metadata=_help("AdamW weight decay on matrices (not biases or norms)."))
    beta1: float = field(default=0.9, metadata=_help("AdamW beta1."))
    beta2: float = field(default=0.95, metadata=_help("AdamW beta2."))
    grad_clip: float = field(default=1.0, metadata=_help("Clip the global gradient norm to this (0: off)."))
    seed: int = field(default=1234, metadata=_help("Seed of the initialization and of the data order."))
    eod_token: str | None = field(default=None, metadata=_help(
        "End-of-document token (default: the tokenizer's <|endoftext|>, </s>, <eos>, ...)."))
    save_every: int = field(default=1000, metadata=_help(
        "After the log-spaced checkpoints 0, 1, 2, 4, ..., 512, save every this many steps (and the last)."))
    precision: str = field(default="auto", metadata=_help(
        "auto (bf16-mixed on GPU, fp32 on CPU), fp32 or bf16-mixed."))
    compile: bool = field(default=False, metadata=_help("Compile the model with torch.compile."))
    parallel: str = field(default="ddp", metadata=_help(
        "With several processes (torchrun): ddp, or fsdp (FSDP2, shards parameters and optimizer state)."))
    device: str = field(default="auto", metadata=_help("auto (cuda when available), cpu or cuda."))
    threads: int | None = field(default=None, metadata=_help(
        "CPU threads per process (default: the cores this process may use, divided among local processes)."))
    peak_flops: float | None = field(default=None, metadata=_help(
        "Peak FLOP/s of one device for MFU (default: a datasheet table on GPU, a measured matmul on CPU)."))


MAY_CHANGE_ON_RESUME = ("steps", "save_every", "compile", "device", "threads", "peak_flops", "precision", "parallel")
"""Fields that do not change which tokens are seen or what the optimizer computes on CPU."""

FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def field_help(name: str) -> str:
    return FIELDS[name].metadata["help"]


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The fields a TOML file sets (unknown names are an error)."""
    try:
        values = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read --config {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"--config {path} is not valid TOML: {error}") from None
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"--config {path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    return values


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Defaults, then the TOML file's values, then ``overrides`` that are not None."""
    values = read_config_file(path) if path is not None else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown training setting(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    config = TrainConfig(**values)
    validate(config)
    return config


def validate(config: TrainConfig) -> None:
    from .model import MODEL_SIZES

    positive = ("steps", "batch_size", "seq_len", "grad_accum", "save_every")
    for name in positive:
        if getattr(config, name) < 1 and not (name == "steps" and config.steps == 0):
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(config, name)}")
    if config.model_size not in MODEL_SIZES:
        raise ConfigError(f"--model-size {config.model_size!r} is unknown; use one of {', '.join(MODEL_SIZES)}")
    if config.batch_size % config.grad_accum:
        raise ConfigError(f"--batch-size {config.batch_size} does not divide by --grad-accum {config.grad_accum}")
    choices = {"precision": ("auto", "fp32", "bf16-mixed"), "parallel": ("ddp", "fsdp"),
               "device": ("auto", "cpu", "cuda")}
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise ConfigError(f"--{name} {getattr(config, name)!r} is not one of {', '.join(allowed)}")
    if config.lr <= 0 or not 0 <= config.min_lr_ratio <= 1:
        raise ConfigError("--lr must be positive and --min-lr-ratio between 0 and 1")


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
