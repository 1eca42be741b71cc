"""The hash of a model folder's weights: what results and caches record to name a model exactly."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from ..errors import ModelError


def weight_files(folder: str | Path) -> list[Path]:
    """The files of a model folder that the weights hash covers (safetensors and .bin), in name order."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix in (".safetensors", ".bin"))


def combine_weights_hashes(file_sha256: Mapping[str, str]) -> str:
    """The weights hash from the sha256 of each weights file (file name -> hex digest): what
    :func:`weights_sha256` computes, for callers that know the file hashes already (a run's manifest)."""
    digest = hashlib.sha256()
    for name in sorted(file_sha256):
        digest.update(f"{name}:{file_sha256[name]}\n".encode())
    return digest.hexdigest()


def weights_sha256(folder: str | Path) -> str:
    """Hash of a model folder's weights: sha256 over its safetensors/bin files, in name order."""
    from .._files import sha256_file

    files = weight_files(folder)
    if not files:
        raise ModelError(f"{folder} holds no weights (.safetensors or .bin); pass a saved model folder")
    return combine_weights_hashes({p.name: sha256_file(p) for p in files})
