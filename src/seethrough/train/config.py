"""Training configuration: one typed dataclass; each field's ``help`` is also its CLI help.

A TOML file (``--config``) sets any field by name; command-line flags override the file. The
resolved configuration is written into the run manifest, and a resumed run must match it except in
the fields listed in ``MAY_CHANGE_ON_RESUME``.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from collections.abc import Callable
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


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The fields a TOML file sets (unknown names are an error; values are checked by ``validate``)."""
    try:
        values = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read --config {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--config {path} is not UTF-8 text; TOML files are UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"--config {path} is not valid TOML: {error}") from None
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"--config {path}: unknown field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    return values


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Defaults, then the TOML file's values, then ``overrides`` that are not None; validated."""
    values = read_config_file(path) if path is not None else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown training setting(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    config = TrainConfig(**values)
    validate(config)
    return config


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def _base_type(hint: Any) -> tuple[type, bool]:
    args = typing.get_args(hint)
    return next((a for a in args if a is not type(None)), hint), type(None) in args


# Each field's type without its ``| None``, and whether None is allowed (the CLI's flags are typed by
# typer, but a --config file or a Python caller can give anything).
_TYPES = {name: _base_type(hint) for name, hint in typing.get_type_hints(TrainConfig).items()}


def _check_type(name: str, value: Any) -> None:
    kind, optional = _TYPES[name]
    if value is None:
        if not optional:
            raise ConfigError(f"{_flag(name)} needs a value (it has no automatic default)")
        return
    # bool is an int in Python, so `steps = true` would otherwise read as 1 step
    if kind is bool:
        ok, wanted = isinstance(value, bool), "true or false"
    elif kind is int:
        ok, wanted = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif kind is float:
        ok, wanted = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    else:
        ok, wanted = isinstance(value, kind), "a string"
    if not ok:
        raise ConfigError(f"{_flag(name)} must be {wanted}, not {value!r}")


def validate(config: TrainConfig) -> None:
    """Refuse any value training cannot use, naming its flag, before anything is written.

    Every float must be finite: ``--lr inf`` or ``nan`` would otherwise train to a NaN loss and
    report the run "complete"."""
    from .model import MODEL_SIZES

    for name in FIELDS:
        _check_type(name, getattr(config, name))

    def at_least(name: str, low: int) -> None:
        value = getattr(config, name)
        if value is not None and value < low:
            raise ConfigError(f"{_flag(name)} must be at least {low}, not {value}")

    def number(name: str, inside: Callable[[float], bool], wanted: str, hint: str = "") -> None:
        value = getattr(config, name)
        if value is not None and not (math.isfinite(value) and inside(value)):
            raise ConfigError(f"{_flag(name)} must be {wanted}, not {value}{hint}")

    # steps >= 1: a run of 0 steps would record a learning-rate schedule of length 0, which a later
    # --resume --steps N could not continue as the same run; every run keeps checkpoint step-0 anyway
    for name in ("steps", "batch_size", "seq_len", "grad_accum", "save_every", "lr_decay_steps", "threads"):
        at_least(name, 1)
    at_least("warmup_steps", 0)
    if not 0 <= config.seed < 2**64:  # torch.manual_seed takes at most 64 bits
        raise ConfigError(f"--seed must be in 0..2**64-1, not {config.seed}")
    schedule = config.lr_decay_steps or config.steps  # what learning_rate() decays over
    if config.warmup_steps is not None and config.warmup_steps > schedule:
        raise ConfigError(f"--warmup-steps {config.warmup_steps} is longer than the learning-rate schedule it warms "
                          f"up ({schedule} steps: --lr-decay-steps, by default --steps); make it at most {schedule}")
    number("lr", lambda v: v > 0, "a finite number above 0", " (a typical peak is 1e-4 .. 1e-2)")
    number("min_lr_ratio", lambda v: 0 <= v <= 1, "between 0 and 1")
    number("weight_decay", lambda v: v >= 0, "a finite number, 0 or more")
    number("beta1", lambda v: 0 <= v < 1, "at least 0 and below 1")
    number("beta2", lambda v: 0 <= v < 1, "at least 0 and below 1")
    number("grad_clip", lambda v: v >= 0, "a finite number, 0 or more", " (0 turns clipping off)")
    number("peak_flops", lambda v: v > 0, "a finite number of FLOP/s above 0")
    if config.model_size not in MODEL_SIZES:
        raise ConfigError(f"--model-size {config.model_size!r} is unknown; use one of {', '.join(MODEL_SIZES)}")
    if config.batch_size % config.grad_accum:
        raise ConfigError(f"--batch-size {config.batch_size} does not divide by --grad-accum {config.grad_accum}")
    choices = {"precision": ("auto", "fp32", "bf16-mixed"), "parallel": ("ddp", "fsdp"),
               "device": ("auto", "cpu", "cuda")}
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise ConfigError(f"--{name} {getattr(config, name)!r} is not one of {', '.join(allowed)}")


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)
