"""Interventions at deployment: a concept eraser (LEACE) or a steering vector, applied through forward
hooks on the transformer blocks while the model runs.

An intervention is a folder (written by ``seethrough erase`` / ``seethrough steer``; formats in
docs/formats.md):

- an ERASER: ``eraser.json`` + per erased layer L ``layer-L.safetensors`` with concept-erasure's
  tensors ``proj_left`` (width x k), ``proj_right`` (k x width) and ``bias`` (width). The state x
  leaving block L becomes ``x - ((x - bias) @ proj_right.T) @ proj_left.T`` at every position;
- a steering VECTOR: ``vector.json`` + per layer ``layer-L.safetensors`` with ``vector`` (width). The
  state leaving block L becomes ``x + multiplier * vector`` at every position from ``start`` on.

Layers are numbered as transformers' ``hidden_states`` (``hidden``): L is the output of block L, 1..n.
The hooks edit the block's output itself, so for the last block (n) they act before the model's final
norm, where ``hidden_states[n]`` is read after it; the states an intervention is fitted on are read
at the same place it edits (``block_output_states``).

Each intervention records the weights hash of the model it was fitted on; installing it on another
model is refused. Its ``sha256`` names its files' content, for provenance and cache keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelError

ERASER, STEERING = "eraser", "steering"
ERASER_FORMAT, VECTOR_FORMAT = "seethrough-eraser", "seethrough-steering-vector"
ERASER_FILE, VECTOR_FILE = "eraser.json", "vector.json"
ERASER_TENSORS = ("proj_left", "proj_right", "bias")
A_KIND = {ERASER: "an eraser", STEERING: "a steering vector"}
ERASER_METHODS = ("leace", "orth")


def layer_file(layer: int) -> str:
    return f"layer-{layer}.safetensors"


def folder_sha256(folder: str | Path) -> str:
    """sha256 over an intervention folder's own files (``eraser.json`` or ``vector.json`` and the
    ``layer-L.safetensors``), in name order (as ``weights_sha256``); a report beside them is not part of it."""
    from .._files import sha256_file
    from .weights import combine_weights_hashes

    own = [p for p in Path(folder).iterdir() if p.is_file() and (p.name in (ERASER_FILE, VECTOR_FILE) or
                                                                  (p.name.startswith("layer-") and p.suffix == ".safetensors"))]
    return combine_weights_hashes({p.name: sha256_file(p) for p in own})


@dataclass(frozen=True)
class Intervention:
    """An eraser or a steering vector, loaded from its folder (``load_intervention``)."""
    kind: str
    """``eraser`` or ``steering``."""
    path: Path | None
    """Its folder; None for one made in memory (``in_memory``), not yet written."""
    sha256: str
    """Of the folder's files (``folder_sha256``) when it was loaded; of the tensors for one in memory."""
    layers: tuple[int, ...]
    model_sha256: str
    """The weights hash of the model it was fitted on (``Checkpoint.weights_sha256``)."""
    model_path: str = ""
    method: str | None = None
    """An eraser's fitting method (``leace`` or ``orth``)."""
    multiplier: float | None = None
    """A steering vector's multiplier (None for an eraser)."""
    tensors: dict[int, dict[str, np.ndarray]] = field(default_factory=dict, compare=False, repr=False)
    """Per layer, the float32 arrays of ``layer-L.safetensors``."""

    def to_dict(self) -> dict[str, Any]:
        """What provenance records: kind, folder (absolute, so that a record re-runs from any directory, as the
        model's path), content hash, layers, the model's weights hash, method or multiplier."""
        out: dict[str, Any] = {"kind": self.kind, "path": None if self.path is None else str(self.path.absolute()),
                               "sha256": self.sha256,
                               "layers": list(self.layers), "model_weights_sha256": self.model_sha256}
        if self.kind == ERASER:
            out["method"] = self.method
        else:
            out["multiplier"] = self.multiplier
        return out

    def with_multiplier(self, multiplier: float) -> Intervention:
        """The same steering vector at another multiplier."""
        if self.kind != STEERING:
            raise ConfigError(f"{self.path} is an eraser; only a steering vector takes a multiplier")
        return replace(self, multiplier=check_multiplier(multiplier))

    def check_model(self, weights_sha256: str, where: Any = "this model") -> None:
        """Refuse a model other than the one this was fitted on (by weights hash)."""
        if weights_sha256 != self.model_sha256:
            tool = "seethrough erase" if self.kind == ERASER else "seethrough steer"
            raise ModelError(f"{self.kind} {self.path} was fitted on model {self.model_path or '?'} (weights "
                             f"{self.model_sha256[:12]}), not {where} ({weights_sha256[:12]}); fit one for this model "
                             f"with {tool}")

    def check_unchanged(self) -> None:
        """Refuse a folder whose files changed since it was loaded (so what provenance names is what runs)."""
        if self.path is not None and folder_sha256(self.path) != self.sha256:
            raise ModelError(f"{self.kind} {self.path} changed since it was loaded (its files' sha256 differs); load it "
                             "again")

    def edit(self, layer: int, hidden: Any) -> Any:
        """``hidden`` (... x width, a torch tensor) with this intervention applied as at ``layer`` (every position)."""
        tensors = self._torch_tensors(hidden)[layer]
        if self.kind == ERASER:
            return _erase(hidden, *tensors)
        return hidden + tensors[0]

    def _torch_tensors(self, like: Any) -> dict[int, tuple[Any, ...]]:
        import torch

        out: dict[int, tuple[Any, ...]] = {}
        for layer in self.layers:
            arrays = self.tensors[layer]
            if self.kind == ERASER:
                out[layer] = tuple(torch.from_numpy(arrays[name]).to(device=like.device, dtype=like.dtype)
                                   for name in ERASER_TENSORS)
            else:
                # multiplier x vector computed once in float32, then cast: what every position gets
                scaled = torch.from_numpy(arrays["vector"]) * float(self.multiplier or 0.0)
                out[layer] = (scaled.to(device=like.device, dtype=like.dtype),)
        return out

    def install(self, model: Any, start: int = 0) -> list[Any]:
        """Register this intervention's hooks on ``model`` for good; returns their handles
        (``handle.remove()`` takes one off). ``installed`` is the scoped form."""
        return install(self, model, start)

    @contextlib.contextmanager
    def installed(self, model: Any, start: int = 0) -> Iterator[Any]:
        """Within the block, ``model`` runs with this intervention on (hooks on its blocks, removed on exit,
        also on error). A steering vector is added at positions ``start`` and after (0: every position);
        an eraser edits every position."""
        handles = install(self, model, start)
        try:
            yield model
        finally:
            for handle in handles:
                handle.remove()


def in_memory(kind: str, tensors: dict[int, dict[str, np.ndarray]], model_sha256: str, model_path: str = "",
              method: str | None = None, multiplier: float | None = None) -> Intervention:
    """An intervention not (yet) written to a folder, e.g. while fitting; its sha256 is of its tensors."""
    digest = hashlib.sha256(kind.encode())
    for layer in sorted(tensors):
        for name in sorted(tensors[layer]):
            array = np.ascontiguousarray(tensors[layer][name], dtype=np.float32)
            digest.update(f"{layer}.{name}:{array.shape}\n".encode())
            digest.update(array.tobytes())
    return Intervention(kind, None, digest.hexdigest(), tuple(sorted(tensors)), model_sha256, model_path, method,
                        multiplier, tensors)


def _erase(x: Any, proj_left: Any, proj_right: Any, bias: Any) -> Any:
    # concept-erasure's LeaceEraser.__call__, term for term (so the result is the package's)
    return x - ((x - bias) @ proj_right.mH) @ proj_left.mH


def install(intervention: Intervention, model: Any, start: int = 0) -> list[Any]:
    """Register the intervention's hooks on ``model`` and return their handles (``handle.remove()`` takes
    them off); ``Intervention.installed`` is the scoped form. Refuses a layer the model does not have."""
    from .generation import model_device
    from .hidden import check_layer, transformer_layers

    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ConfigError(f"steering start {start!r}: give a position of at least 0")
    if intervention.kind == ERASER and start:
        raise ConfigError("an eraser edits every position; a start position is for steering vectors")
    blocks = transformer_layers(model)
    for layer in intervention.layers:
        try:
            check_layer(model, layer)
        except ModelError:
            raise ModelError(f"{intervention.kind} {intervention.path} edits layer {layer}, which this model does "
                             f"not have (blocks 1..{len(blocks)}); fit one for this model") from None
    import torch

    weight = next(model.parameters(), None)
    like = weight if weight is not None else torch.zeros(0, device=model_device(model))
    tensors = intervention._torch_tensors(like)
    handles = []
    try:
        for layer in intervention.layers:
            hook = _hook(intervention.kind, tensors[layer], start)
            # first among the block's hooks, as edit_layer_output: transformers' own hidden_states
            # recording hooks then see the edited state, as the next block does
            handles.append(blocks[layer - 1].register_forward_hook(hook, prepend=True, with_kwargs=True))
    except BaseException:
        for handle in handles:
            handle.remove()
        raise
    return handles


def _hook(kind: str, tensors: tuple[Any, ...], start: int) -> Any:
    def apply(hidden: Any, kwargs: dict[str, Any]) -> Any:
        if tensors[0].dtype != hidden.dtype or tensors[0].device != hidden.device:
            cast = tuple(t.to(device=hidden.device, dtype=hidden.dtype) for t in tensors)
        else:
            cast = tensors
        if kind == ERASER:
            return _erase(hidden, *cast)
        (scaled,) = cast
        if start == 0:
            return hidden + scaled
        positions = kwargs.get("position_ids")
        if positions is None:
            raise ModelError("this model's blocks are not given position ids, so steering from a position cannot "
                             "tell where the prompt ends; steer every position (start 0)")
        mask = (positions >= start).to(hidden.dtype)  # 1 x positions or batch x positions
        return hidden + mask[..., None] * scaled

    def hook(_module: Any, _args: Any, kwargs: dict[str, Any], output: Any) -> Any:
        if isinstance(output, tuple):
            return (apply(output[0], kwargs), *output[1:])
        return apply(output, kwargs)

    return hook


def check_multiplier(value: Any) -> float:
    """``value`` as a float, if it is a finite number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"multiplier {value!r} is not a finite number; give one like 4 or -2.5")
    return float(value)


def parse_multipliers(spec: str | Sequence[Any]) -> list[float]:
    """``"0,2,4,-4"`` (or a list of numbers) -> floats; anything that is not a finite number is refused."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[float] = []
    for part in parts:
        text = part.strip() if isinstance(part, str) else part
        try:
            value = float(text) if isinstance(text, str) else text
        except ValueError:
            raise ConfigError(f"--multipliers {spec!r}: {text!r} is not a number; give numbers like 0,2,4,-4") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"--multipliers {spec!r}: {text!r} is not a finite number; give numbers like 0,2,4,-4")
        if float(value) in out:  # a repeated multiplier would only repeat a row of the curve
            raise ConfigError(f"--multipliers {spec!r}: {text!r} is given twice; give each multiplier once")
        out.append(float(value))
    if not out or (isinstance(spec, str) and not spec.strip()):
        raise ConfigError("--multipliers: give at least one number, like 0,2,4,-4")
    return out


def parse_steer(spec: str) -> tuple[Path, float]:
    """``--steer V:M``: a steering VECTOR folder and a multiplier (the number after the last colon)."""
    folder, colon, number = str(spec).rpartition(":")
    if not colon or not folder:
        raise ConfigError(f"--steer {spec!r}: write VECTOR:MULTIPLIER, like steer-out:4")
    try:
        value = float(number)
    except ValueError:
        raise ConfigError(f"--steer {spec!r}: the multiplier {number!r} is not a number; write VECTOR:MULTIPLIER, "
                          "like steer-out:4") from None
    if not math.isfinite(value):
        raise ConfigError(f"--steer {spec!r}: the multiplier {number!r} is not a finite number; write VECTOR:MULTIPLIER, "
                          "like steer-out:4")
    return Path(folder), value


def load_intervention(folder: str | Path, multiplier: float | None = None) -> Intervention:
    """An ERASER folder (``eraser.json``) or a steering VECTOR folder (``vector.json``; ``multiplier``
    required), its files checked: the format, every layer's tensors, their shapes."""
    from safetensors.numpy import load_file

    folder = Path(folder)
    if (folder / ERASER_FILE).exists():
        kind, meta_file, expected = ERASER, folder / ERASER_FILE, ERASER_FORMAT
    elif (folder / VECTOR_FILE).exists():
        kind, meta_file, expected = STEERING, folder / VECTOR_FILE, VECTOR_FORMAT
    else:
        what = "does not exist" if not folder.exists() else "holds neither eraser.json nor vector.json"
        raise ConfigError(f"{folder} {what}; pass a folder written by seethrough erase --out or seethrough steer --out")
    if kind == STEERING and multiplier is None:
        raise ConfigError(f"{folder} is a steering vector; give its multiplier (--steer {folder}:M)")
    if kind == ERASER and multiplier is not None:
        raise ConfigError(f"{folder} is an eraser, which takes no multiplier; use --erase {folder}")
    sha = folder_sha256(folder)
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        raise ConfigError(f"{meta_file} cannot be read ({str(error).splitlines()[0]}); write it again") from None
    if not isinstance(meta, dict) or meta.get("format") != expected:
        raise ConfigError(f"{meta_file} is not a {expected} file; write it with seethrough "
                          f"{'erase' if kind == ERASER else 'steer'} --out")
    try:
        layers = tuple(meta["layers"])
        model = meta["model"]
        model_sha = str(model["weights_sha256"])
        width = int(meta["width"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{meta_file} lacks its layers, width or model weights hash; write it again") from None
    if not layers or len(set(layers)) < len(layers) or any(isinstance(x, bool) or not isinstance(x, int)
                                                           for x in layers):
        raise ConfigError(f"{meta_file}: layers {list(layers)!r} are not distinct block numbers; write it again")
    if kind == ERASER and meta.get("method") not in ERASER_METHODS:
        raise ConfigError(f"{meta_file}: method {meta.get('method')!r} is not one of {', '.join(ERASER_METHODS)}; "
                          "write it again")
    names = ERASER_TENSORS if kind == ERASER else ("vector",)
    tensors: dict[int, dict[str, np.ndarray]] = {}
    for layer in layers:
        file = folder / layer_file(layer)
        try:
            arrays = load_file(str(file))
        except Exception as error:  # safetensors raises its own error type, besides OSError
            raise ConfigError(f"{file} cannot be read ({str(error).splitlines()[0] if str(error) else type(error).__name__}); "
                              "write the folder again") from None
        missing = [n for n in names if n not in arrays]
        if missing:
            raise ConfigError(f"{file} lacks {', '.join(missing)}; a layer of {A_KIND[kind]} holds {', '.join(names)}")
        arrays = {n: np.ascontiguousarray(arrays[n], dtype=np.float32) for n in names}
        _check_shapes(file, kind, arrays, width)
        tensors[layer] = arrays
    return Intervention(kind, folder, sha, layers, model_sha, str(model.get("path", "")),
                        meta.get("method") if kind == ERASER else None,
                        None if multiplier is None else check_multiplier(multiplier), tensors)


def load_eraser(folder: str | Path, flag: str = "--erase") -> Intervention:
    """An ERASER folder (``load_intervention``); anything else is refused, naming ``flag``."""
    return _load_kind(folder, ERASER, flag)


def load_steering(folder: str | Path, multiplier: float, flag: str = "--steer") -> Intervention:
    """A steering VECTOR folder at ``multiplier`` (``load_intervention``); anything else is refused, naming ``flag``."""
    return _load_kind(folder, STEERING, flag, multiplier)


def _load_kind(folder: str | Path, kind: str, flag: str, multiplier: float | None = None) -> Intervention:
    folder = Path(folder)
    own, other = (ERASER_FILE, VECTOR_FILE) if kind == ERASER else (VECTOR_FILE, ERASER_FILE)
    if not (folder / own).exists():
        if (folder / other).exists():
            fix = f"{flag} takes an eraser (seethrough erase --out)" if kind == ERASER else \
                f"an eraser takes no multiplier; pass it as --erase {folder}"
            raise ConfigError(f"{flag} {folder} is {A_KIND[STEERING if kind == ERASER else ERASER]}; {fix}")
        what = "does not exist" if not folder.exists() else f"holds no {own}"
        raise ConfigError(f"{flag} {folder} {what}; pass a folder written by seethrough "
                          f"{'erase' if kind == ERASER else 'steer'} --out")
    return load_intervention(folder, multiplier)


def _check_shapes(file: Path, kind: str, arrays: dict[str, np.ndarray], width: int) -> None:
    if kind == ERASER:
        left, right, bias = arrays["proj_left"], arrays["proj_right"], arrays["bias"]
        ok = (left.ndim == 2 and right.ndim == 2 and left.shape[0] == width and right.shape[1] == width
              and left.shape[1] == right.shape[0] and bias.shape == (width,))
    else:
        ok = arrays["vector"].shape == (width,)
    if not ok:
        raise ConfigError(f"{file}: tensor shapes do not fit a width of {width}; write the folder again")


def write_intervention(folder: str | Path, kind: str, meta: dict[str, Any],
                       tensors: dict[int, dict[str, np.ndarray]]) -> Path:
    """Write an ERASER or VECTOR folder: each layer file, then the JSON last (atomic writes), so a folder
    with its JSON is complete. ``meta`` gets ``format``, ``version`` and ``layers``."""
    from safetensors.numpy import save

    from .._files import atomic_write_bytes, atomic_write_json

    folder = check_out_folder(folder, kind)
    meta_name = ERASER_FILE if kind == ERASER else VECTOR_FILE
    folder.mkdir(parents=True, exist_ok=True)
    keep = {layer_file(layer) for layer in tensors}
    for stale in folder.glob("layer-*.safetensors"):  # an earlier fit's layers must not stay beside these
        if stale.name not in keep:
            stale.unlink()
    (folder / meta_name).unlink(missing_ok=True)  # the folder is incomplete until its JSON is written again
    for layer, arrays in tensors.items():
        atomic_write_bytes(folder / layer_file(layer),
                           save({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}))
    atomic_write_json(folder / meta_name, {"format": ERASER_FORMAT if kind == ERASER else VECTOR_FORMAT,
                                           "version": 1, **meta, "layers": sorted(tensors)})
    return folder


def check_out_folder(folder: str | Path, kind: str) -> Path:
    """``--out`` for a ``kind`` folder, refused (before any fitting) when it is a file or holds anything but
    an earlier folder of the same kind: replacing its layer files must not delete a model's weights, the
    other kind's tensors or a user's files (a ``layer-L.safetensors`` beside a model's ``config.json``
    would even change the model's weights hash)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file; give a folder")
    if not folder.is_dir():
        return folder
    meta_name, other = (ERASER_FILE, VECTOR_FILE) if kind == ERASER else (VECTOR_FILE, ERASER_FILE)
    names = {p.name for p in folder.iterdir()}
    if other in names:
        raise ConfigError(f"--out {folder} holds {A_KIND[STEERING if kind == ERASER else ERASER]} ({other}); give a "
                          "new or empty folder")
    foreign = sorted(n for n in names if n not in (meta_name, "summary.json")
                     and not (n.startswith("layer-") and n.endswith(".safetensors"))
                     and not (n.startswith(".") and n.endswith(".tmp")))  # an interrupted atomic write's leftover
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ConfigError(f"--out {folder} holds files that are not {A_KIND[kind]}'s ({shown}); give a new or empty "
                          "folder")
    return folder


def block_output_states(model: Any, rows: Sequence[Sequence[int]], layers: Sequence[int],
                        batch_size: int = 64) -> Any:
    """The state leaving block L (what a hook on layer L edits) at the last position of each row, for
    each of ``layers`` (1..n): float32, rows x layers x width. Interventions already installed on
    ``model`` act as it runs."""
    import torch

    from .generation import batches_by_length, model_device
    from .hidden import check_layer, transformer_layers

    blocks = transformer_layers(model)
    for layer in layers:
        check_layer(model, layer)
    if any(len(r) == 0 for r in rows):
        raise ModelError("an empty row has no last token; every row needs at least one token")
    # a row gives the same state whatever rows share its pass (no padding), so equal rows run once
    keys = [tuple(r) for r in rows]
    first = {key: k for k, key in reversed(list(enumerate(keys)))}
    if len(first) < len(rows):
        unique = sorted(first.values())
        states = block_output_states(model, [rows[i] for i in unique], layers, batch_size)
        where = {keys[i]: j for j, i in enumerate(unique)}
        return states[[where[key] for key in keys]]
    from .loading import forward_arguments

    device = model_device(model)
    _, last_logits_only = forward_arguments(model)  # the vocabulary projection of the last position only
    captured: dict[int, Any] = {}

    def catcher(layer: int) -> Any:
        def hook(_module: Any, _inputs: Any, output: Any) -> None:
            captured[layer] = output[0] if isinstance(output, tuple) else output
        return hook

    # appended after any intervention's hooks, so what is read is the state the next block receives
    handles = [blocks[layer - 1].register_forward_hook(catcher(layer)) for layer in layers]
    out: Any = None
    try:
        with torch.inference_mode():
            for group in batches_by_length(rows, batch_size):
                ids = torch.tensor([list(rows[i]) for i in group], dtype=torch.long, device=device)
                model(input_ids=ids, use_cache=False, **last_logits_only)
                picked = torch.stack([captured[layer][:, -1] for layer in layers], dim=1).float().cpu()
                if out is None:
                    out = torch.empty((len(rows), len(layers), picked.shape[-1]), dtype=torch.float32)
                out[torch.tensor(group)] = picked
    finally:
        for handle in handles:
            handle.remove()
    return out
