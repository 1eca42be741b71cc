"""``seethrough train``: a plain PyTorch training loop whose every batch can be replayed.

Read it top to bottom: open the corpus and its data order, build (or restore) the model and the
optimizer, then for each step: set the learning rate, take the step's batch from the data order,
hash it, run forward/backward over the micro-batches, clip, step, log, and save a checkpoint at
the scheduled steps. Several processes (``torchrun``) split each global batch; the batch itself
never depends on how many processes there are.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._files import atomic_write_bytes, atomic_write_json, sha256_file
from .._threads import available_cores
from .._version import code_version
from ..corpus.store import open_token_corpus
from ..errors import SeethroughError
from .config import FIELDS, MAY_CHANGE_ON_RESUME, ConfigError, TrainConfig, load_config, to_dict, validate
from .model import build_model, flops_per_token, peak_flops
from .order import DataOrder, OrderSpec, batch_sha256, find_eod_id
from .run import CHECKPOINTS, LOG, RUN_MANIFEST, RunError, _log_lines, checkpoint_dir, read_run_manifest


def is_checkpoint_step(step: int, steps: int, save_every: int) -> bool:
    """Pythia's schedule: 0, 1, 2, 4, ..., 512, then every ``save_every``, and the last step.

    A test rather than a list, so that a run of any length costs nothing to schedule."""
    log_spaced = step == 0 or (step <= 512 and step & (step - 1) == 0)
    return 0 <= step <= steps and (log_spaced or step % save_every == 0 or step == steps)


def checkpoint_steps(steps: int, save_every: int) -> list[int]:
    """The steps ``is_checkpoint_step`` saves at, in order."""
    return [s for s in range(steps + 1) if is_checkpoint_step(s, steps, save_every)]


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warmup to ``lr``, cosine down to ``lr * min_lr_ratio`` at ``lr_decay_steps``, then flat."""
    warmup, decay = config.warmup_steps or 0, config.lr_decay_steps or config.steps
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, decay - warmup))
    floor = config.lr * config.min_lr_ratio
    return floor + 0.5 * (config.lr - floor) * (1 + math.cos(math.pi * progress))


class _Processes:
    """Rank, world size and device of this process; one process unless started by torchrun."""

    def __init__(self, config: TrainConfig):
        import torch

        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(self.world)))
        want_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
        if want_cuda and not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for but torch sees no GPU; use --device cpu")
        self.device = torch.device(f"cuda:{self.local_rank}" if want_cuda else "cpu")
        if want_cuda:
            torch.cuda.set_device(self.device)
        self.sharded = self.world > 1 and config.parallel == "fsdp"
        self.threads = config.threads or max(1, available_cores() // local_world)
        torch.set_num_threads(self.threads)
        if self.world > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group("nccl" if want_cuda else "gloo")
        if config.batch_size % (self.world * config.grad_accum):
            raise ConfigError(f"--batch-size {config.batch_size} does not divide by {self.world} processes x "
                              f"--grad-accum {config.grad_accum}")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def mean(self, value: Any) -> Any:
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(value)
            value /= self.world
        return value


def train(corpus: str | Path, out: str | Path, settings: TrainConfig | Mapping[str, Any] | None = None,
          resume: bool = False, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train on ``corpus`` into the run folder ``out``; returns the run manifest.

    ``settings``: a full :class:`TrainConfig`, or a mapping of the fields given explicitly (the CLI's
    flags and ``--config`` file). With ``resume``, the run's recorded configuration is the base and
    explicit fields may change only those in ``MAY_CHANGE_ON_RESUME``.
    ``progress`` is called after every step with that step's log record.
    """
    import torch
    import torch.nn.functional as F

    out = Path(out)
    tokens = open_token_corpus(corpus)
    if tokens.tokenizer is None or tokens.corpus_hash is None:
        raise SeethroughError(f"{corpus} is not a seethrough corpus with a tokenizer; build it with "
                              "`seethrough corpus build`")
    # everything that can refuse is checked here, by every process, before anything is written
    config, manifest = _resolve(out, tokens, settings, resume)
    start = max(0, _newest(manifest))
    if resume and start == config.steps and manifest["status"] == "complete":
        return read_run_manifest(out)  # nothing to train: leave the finished run as it is
    procs = _Processes(config)
    procs.barrier()  # every process has checked the folder before the first one writes to it
    order = DataOrder(tokens, OrderSpec(**manifest["data_order"]["spec"]))
    manifest["data_order"]["sequences_per_epoch"] = order.sequences_per_epoch
    try:
        out.mkdir(parents=True, exist_ok=True)  # only once the corpus is known to hold a row
    except OSError as error:
        raise RunError(f"cannot create --out {out}: {error.strerror or error}; choose another --out") from None
    if resume and procs.main:
        _remove_stale_temporaries(out)

    model = build_model(config.model_size, tokens.vocab_size, config.seq_len, order.spec.eod_id, config.seed)
    trainer_state = None
    if resume and manifest["checkpoints"]:
        trainer_state = _restore_weights(out, manifest, model)
    model.to(procs.device)
    wrapped = model
    if procs.world > 1 and config.parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(model, device_ids=[procs.device.index] if procs.device.type == "cuda" else None)
    elif procs.sharded:
        from torch.distributed.fsdp import fully_shard

        for layer in model.gpt_neox.layers:
            fully_shard(layer)
        wrapped = fully_shard(model)
    # after sharding, which replaces the parameters; fused is ~3x faster than the default loop, CPU included
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, betas=(config.beta1, config.beta2), fused=not procs.sharded, foreach=procs.sharded or None)
    if trainer_state is not None:
        _restore_optimizer(model, optimizer, trainer_state, procs)
    forward = torch.compile(wrapped) if config.compile else wrapped
    bf16 = config.precision == "bf16-mixed" or (config.precision == "auto" and procs.device.type == "cuda")
    autocast = (lambda: torch.autocast(procs.device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def save_at(step: int) -> bool:
        return is_checkpoint_step(step, config.steps, config.save_every)

    flops = flops_per_token(model, config.seq_len)
    peak, peak_source = peak_flops(procs.device, procs.threads, config.peak_flops)
    per_process = config.batch_size // procs.world
    micro = per_process // config.grad_accum
    manifest["model"] = {"parameters": sum(p.numel() for p in model.parameters()), "flops_per_token": flops}
    manifest["hardware"] = {"device": str(procs.device), "processes": procs.world, "threads": procs.threads,
                            "peak_flops": peak, "peak_flops_source": peak_source, "torch": torch.__version__}
    # a resumed run is training again: run.json must not say "complete" (or "diverged") while it is
    manifest["status"] = "training"
    manifest.pop("error", None)
    if procs.main:
        _truncate_log(out / LOG, start)
    if start == 0 and not manifest["checkpoints"]:
        _save(out, manifest, model, optimizer, 0, procs)  # every process: saving is collective
    elif procs.main:
        atomic_write_json(out / RUN_MANIFEST, manifest)
    procs.barrier()

    log = open(out / LOG, "a", encoding="utf-8") if procs.main else None
    try:
        for step in range(start, config.steps):
            began = time.perf_counter()
            lr = learning_rate(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = order.batch(step).token_ids
            digest = batch_sha256(batch)
            mine = torch.from_numpy(batch[procs.rank * per_process:(procs.rank + 1) * per_process])
            total = torch.zeros((), device=procs.device)
            for k in range(config.grad_accum):
                rows = mine[k * micro:(k + 1) * micro].to(procs.device)
                last = k == config.grad_accum - 1
                sync = wrapped.no_sync() if procs.world > 1 and config.parallel == "ddp" and not last \
                    else contextlib.nullcontext()
                with sync:
                    with autocast():
                        logits = forward(input_ids=rows[:, :-1], use_cache=False).logits
                    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), rows[:, 1:].reshape(-1))
                    (loss / config.grad_accum).backward()
                total += loss.detach() / config.grad_accum
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or float("inf"))
            # read before the update, not after: a NaN or inf loss or gradient would make every weight
            # NaN, and the checkpoints after it worthless (every process reads the same reduced values)
            loss_value, norm_value = float(procs.mean(total)), float(norm)
            if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
                raise _diverged(out, manifest, procs, step, f"the loss is {loss_value} and the gradient norm "
                                f"{norm_value}, so its update was not applied")
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if procs.device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - began
            tokens_per_s = config.batch_size * config.seq_len / seconds
            record = {
                "step": step, "loss": loss_value, "lr": lr, "grad_norm": norm_value,
                "tokens_seen": (step + 1) * config.batch_size * config.seq_len,
                "tokens_per_s": tokens_per_s, "seconds": seconds,
                "mfu": flops * tokens_per_s / (peak * procs.world) if peak else None,
                "peak_flops": peak, "peak_flops_source": peak_source, "batch_sha256": digest,
            }
            if log is not None:
                log.write(json.dumps(record, allow_nan=False) + "\n")  # strict JSON, for any reader
                log.flush()
            if save_at(step + 1):
                _save(out, manifest, model, optimizer, step + 1, procs)
            if progress is not None:
                progress(record)
    finally:
        if log is not None:
            log.close()
    if procs.main:
        manifest["status"] = "complete" if _newest(manifest) == config.steps else "stopped"
        atomic_write_json(out / RUN_MANIFEST, manifest)
    return manifest


def _diverged(out: Path, manifest: dict[str, Any], procs: _Processes, step: int, what: str) -> RunError:
    """Record in run.json that the run diverged at ``step`` (status "diverged", the message as "error";
    its checkpoints stay listed) and return the one-line error to raise."""
    message = (f"training diverged at step {step}: {what}; the run stops with its checkpoints up to "
               f"step-{_newest(manifest)} kept. Train again into a new --out with a lower --lr "
               f"(this run's is {manifest['config']['lr']:g})")
    if procs.main:
        manifest["status"] = "diverged"
        manifest["error"] = message
        atomic_write_json(out / RUN_MANIFEST, manifest)
    return RunError(message)


def _weights_finite(model: Any, procs: _Processes) -> bool:
    """Whether every weight is finite, on every process (under FSDP each checks its own shard)."""
    import torch

    bad = torch.zeros((), device=procs.device)
    for p in model.parameters():
        local = p.to_local() if hasattr(p, "to_local") else p
        bad += (~torch.isfinite(local.detach())).sum()
    return float(procs.mean(bad)) == 0


def _resolve(out: Path, tokens: Any, settings: TrainConfig | Mapping[str, Any] | None,
             resume: bool) -> tuple[TrainConfig, dict[str, Any]]:
    """The run's configuration and manifest: new, or the recorded one checked against what was given."""
    given = to_dict(settings) if isinstance(settings, TrainConfig) else dict(settings or {})
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown training setting(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}")
    if resume:
        manifest = read_run_manifest(out)
        if manifest["corpus"]["corpus_hash"] != tokens.corpus_hash:
            raise RunError(
                f"run {out} was trained on corpus {manifest['corpus']['path']} (hash "
                f"{manifest['corpus']['corpus_hash'][:12]}), not {tokens.path} (hash {tokens.corpus_hash[:12]}); "
                "resume with the run's own corpus or train a new run with another --out")
        recorded = manifest["config"]
        foreign = sorted(set(recorded) - set(FIELDS))
        if foreign:
            raise RunError(f"{out / RUN_MANIFEST} records training settings this version of seethrough does not "
                           f"know ({', '.join(foreign)}); resume it with the version that trained it")
        config = TrainConfig(**{**recorded, **{k: v for k, v in given.items() if v is not None}})
        validate(config)  # a value that is wrong whatever the run is gets that message first
        changed = sorted(k for k, v in given.items()
                         if v is not None and k not in MAY_CHANGE_ON_RESUME and recorded.get(k) != v)
        if changed:
            details = ", ".join(f"--{k.replace('_', '-')} {given[k]} (run: {recorded.get(k)})" for k in changed)
            raise RunError(f"run {out} was trained with another configuration: {details}; drop these flags to "
                           "resume, or train a new run with another --out")
        reached = _newest(manifest)
        if config.steps < reached:
            raise RunError(f"run {out} is already at step {reached}; --steps must be at least {reached} to resume it "
                           f"(more to train it further), not {config.steps}")
        if manifest["checkpoints"]:
            _verify_checkpoint(out, manifest["checkpoints"][-1])
        _log_lines(out / LOG)  # a damaged log is refused now, before anything is written
        manifest["config"] = to_dict(config)
        return config, manifest
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file, not a folder; choose another --out")
    if out.resolve().is_relative_to(tokens.path.resolve()):  # the run would change the folder it reads
        raise RunError(f"--out {out} is inside the corpus folder {tokens.path}; choose a folder outside it")
    if (out / RUN_MANIFEST).exists():
        raise RunError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
    if out.exists() and any(out.iterdir()):
        raise RunError(f"{out} exists and is not empty; choose another --out")
    config = settings if isinstance(settings, TrainConfig) else load_config(**given)
    validate(config)
    decay = config.lr_decay_steps or config.steps
    config = TrainConfig(**{**to_dict(config), "lr_decay_steps": decay,
                            "warmup_steps": config.warmup_steps if config.warmup_steps is not None
                            else math.ceil(0.05 * decay)})
    validate(config)  # --warmup-steps against the --lr-decay-steps it defaulted to
    eod_id = find_eod_id(tokens, config.eod_token)
    config.eod_token = tokens.tokenizer.tokenizer.id_to_token(eod_id)
    spec = OrderSpec(corpus_hash=tokens.corpus_hash, seed=config.seed, seq_len=config.seq_len,
                     batch_size=config.batch_size, eod_id=eod_id)
    manifest = {
        "format": "seethrough.run", "format_version": 1, "code_version": code_version(),
        "corpus": {"path": str(tokens.path.resolve()), "relative_path": os.path.relpath(tokens.path.resolve(),
                                                                                       out.resolve()),
                   "corpus_hash": tokens.corpus_hash,
                   "tokenizer_sha256": tokens.manifest["tokenizer"]["sha256"]},
        "config": to_dict(config), "seed": config.seed,
        "data_order": {"spec": spec.to_dict(), "sequences_per_epoch": None,
                       "definition": "docs/formats.md#data-order"},
        "checkpoints": [], "status": "training",
    }
    return config, manifest


def _save(out: Path, manifest: dict[str, Any], model: Any, optimizer: Any, step: int, procs: _Processes) -> None:
    """Write ``checkpoints/step-N`` under a temporary name, rename it into place, then list it."""
    import torch

    if step > 0 and not _weights_finite(model, procs):  # an update that overflowed: not a checkpoint to keep
        raise _diverged(out, manifest, procs, step - 1, f"its update made some weights infinite or NaN, so "
                        f"checkpoint step-{step} was not written")
    full_state = _full_state(model, optimizer, procs)
    if not procs.main:
        procs.barrier()
        return
    final = checkpoint_dir(out, step)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model_state, optimizer_state = full_state
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one bar per checkpoint would drown the training progress
    model.save_pretrained(tmp, state_dict=model_state, safe_serialization=True, is_main_process=True)
    _write_tokenizer(tmp, Path(manifest["corpus"]["path"]), manifest["config"]["eod_token"],
                     manifest["config"]["seq_len"])
    torch.save({"step": step, "optimizer": optimizer_state, "optimizer_format": "fqn" if procs.sharded else "torch",
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
               tmp / "trainer_state.pt")
    atomic_write_json(tmp / "state.json", {"step": step, "samples_seen": step * manifest["config"]["batch_size"]})
    if final.exists():
        shutil.rmtree(final)  # a checkpoint of this step from a run that died before listing it
    os.replace(tmp, final)
    files = {p.name: sha256_file(p) for p in sorted(final.iterdir())}
    manifest["checkpoints"] = [c for c in manifest["checkpoints"] if c["step"] != step] + [{
        "step": step, "path": f"{CHECKPOINTS}/{final.name}", "sha256": files["model.safetensors"], "files": files}]
    manifest["checkpoints"].sort(key=lambda c: c["step"])
    atomic_write_json(out / RUN_MANIFEST, manifest)
    procs.barrier()


def _full_state(model: Any, optimizer: Any, procs: _Processes) -> tuple[dict, dict]:
    """Unsharded, CPU copies of the model and optimizer state (every process takes part under FSDP)."""
    if procs.sharded:
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                             get_optimizer_state_dict)

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        # no optimizer state before the first step: get_optimizer_state_dict would create it with a
        # zero-lr step, which advances AdamW's step count and changes every later update
        optimizer_state = get_optimizer_state_dict(model, optimizer, options=options) if optimizer.state else None
        return get_model_state_dict(model, options=options), optimizer_state
    return ({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, optimizer.state_dict())


def _write_tokenizer(folder: Path, corpus: Path, eod_token: str, seq_len: int) -> None:
    """The corpus's tokenizer, with the config ``AutoTokenizer.from_pretrained`` needs."""
    from ..corpus.layout import TOKENIZER_FILE

    shutil.copyfile(corpus / TOKENIZER_FILE, folder / TOKENIZER_FILE)
    atomic_write_json(folder / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": eod_token, "eos_token": eod_token,
        "unk_token": None, "model_max_length": seq_len, "clean_up_tokenization_spaces": False})


def _verify_checkpoint(out: Path, entry: dict[str, Any]) -> None:
    """Every file of a checkpoint against the sha256 run.json recorded when it was written.

    Before loading anything: the trainer state is unpickled, and a damaged file must not become a
    resumed run that silently differs from an uninterrupted one."""
    folder = out / entry["path"]
    recorded = entry.get("files") or {"model.safetensors": entry["sha256"]}  # runs written before "files"
    for name, digest in recorded.items():
        path = folder / name
        if not path.is_file() or sha256_file(path) != digest:
            raise RunError(f"checkpoint {folder}: {name} is missing or does not match the sha256 run.json records "
                           "(damaged or replaced); restore it, or remove this checkpoint from run.json's "
                           "checkpoints to resume from the one before")


def _restore_weights(out: Path, manifest: dict[str, Any], model: Any) -> dict[str, Any]:
    """Load the newest listed checkpoint (verified by ``_resolve``) into ``model``; returns its trainer state."""
    import pickle

    import torch
    from transformers import AutoModelForCausalLM

    folder = out / manifest["checkpoints"][-1]["path"]
    # from_pretrained, not a raw load: transformers renames some weights on save (lm_head -> embed_out)
    saved = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.load_state_dict(saved.state_dict())
    try:
        # weights_only: the state is tensors and plain containers, and unpickling anything else could
        # run code from a file that merely sits in a run folder
        state = torch.load(folder / "trainer_state.pt", map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        raise RunError(f"checkpoint {folder}: trainer_state.pt cannot be loaded safely "
                       f"({str(error).splitlines()[0] if str(error) else type(error).__name__}); restore it, or "
                       "remove this checkpoint from run.json's checkpoints to resume from the one before") from None
    if not isinstance(state, dict) or not {"optimizer", "torch_rng"} <= set(state):
        raise RunError(f"checkpoint {folder}: trainer_state.pt is not a seethrough trainer state")
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state


def _restore_optimizer(model: Any, optimizer: Any, state: dict[str, Any], procs: _Processes) -> None:
    if state["optimizer"] is None:
        return  # saved before the first step: a fresh optimizer is the same
    saved_sharded = state.get("optimizer_format") == "fqn"
    if saved_sharded != procs.sharded:
        raise RunError("this run's optimizer state was saved " + ("with" if saved_sharded else "without")
                       + " FSDP sharding; resume it with the same --parallel and a matching number of processes")
    if procs.sharded:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(model, optimizer, state["optimizer"], options=StateDictOptions(full_state_dict=True))
        return
    optimizer.load_state_dict(state["optimizer"])
    _move_optimizer_state(optimizer, procs.device)


def _move_optimizer_state(optimizer: Any, device: Any) -> None:
    for state in optimizer.state.values():
        for key, value in state.items():
            if hasattr(value, "to") and key != "step":
                state[key] = value.to(device)


def _truncate_log(path: Path, start: int) -> None:
    """Keep the log lines of steps before ``start``: a run that died may have logged past its newest
    checkpoint, and may have left a torn last line (see ``run._log_lines``). Rewritten only if it changes."""
    if not path.exists():
        return
    kept = b"".join(raw for record, raw in _log_lines(path) if record["step"] < start)
    if kept != path.read_bytes():
        atomic_write_bytes(path, kept)


def _remove_stale_temporaries(out: Path) -> None:
    """Delete what killed runs of this folder left half-written: ``.step-N.tmp-PID`` checkpoint folders
    and the temporary files of atomic writes to run.json and log.jsonl.

    All of them, whatever their PID. A run folder has one writer, rank 0 of the one job training it,
    and on resume that is this process. A second job training the same folder at the same time would
    already be overwriting run.json and log.jsonl, so there is no live writer to protect; and asking
    whether the PID is alive would not tell: PIDs are reused, and on a cluster's shared file system the
    PID may be another node's."""
    for tmp in (out / CHECKPOINTS).glob(".step-*.tmp-*"):
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp)
        else:
            tmp.unlink()
    for name in (RUN_MANIFEST, LOG):
        for tmp in out.glob(f".{name}.*.tmp"):  # atomic_write_bytes's temporary names
            tmp.unlink()


def _newest(manifest: dict[str, Any]) -> int:
    return manifest["checkpoints"][-1]["step"] if manifest["checkpoints"] else -1
