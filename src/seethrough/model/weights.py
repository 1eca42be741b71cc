"""The hash of a model folder's weights: what results and caches record to name a model exactly."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import ModelError


def weights_sha256(folder: str | Path) -> str:
    """Hash of a model folder's weights: sha256 over its safetensors/bin files, in name order."""
    from .._files import sha256_file

    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))
    if not files:
        raise ModelError(f"{folder} holds no weights (.safetensors or .bin); pass a saved model folder")
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.name}:{sha256_file(p)}\n".encode())
    return digest.hexdigest()
