"""Model shapes (Pythia's GPT-NeoX), their FLOPs per token, and the peak FLOP/s that MFU divides by."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Shape:
    layers: int
    width: int
    heads: int


# Pythia's shapes (EleutherAI/pythia models/*.yml): rotary on 25% of head dims, parallel residual,
# untied embeddings, MLP 4x width. tiny and small are seethrough's own, for tests and the demo.
MODEL_SIZES: dict[str, Shape] = {
    "tiny": Shape(2, 32, 2),
    "small": Shape(4, 128, 4),
    "pythia-14m": Shape(6, 128, 4),
    "pythia-31m": Shape(6, 256, 8),
    "pythia-70m": Shape(6, 512, 8),
    "pythia-160m": Shape(12, 768, 12),
    "pythia-410m": Shape(24, 1024, 16),
    "pythia-1b": Shape(16, 2048, 8),
    "pythia-1.4b": Shape(24, 2048, 16),
    "pythia-2.8b": Shape(32, 2560, 32),
    "pythia-6.9b": Shape(32, 4096, 32),
    "pythia-12b": Shape(36, 5120, 40),
}


def model_config(size: str, vocab_size: int, max_positions: int, eod_id: int) -> Any:
    from transformers import GPTNeoXConfig

    shape = MODEL_SIZES[size]
    return GPTNeoXConfig(
        vocab_size=vocab_size, hidden_size=shape.width, num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads, intermediate_size=4 * shape.width, rotary_pct=0.25,
        max_position_embeddings=max(max_positions, 2048), use_parallel_residual=True,
        tie_word_embeddings=False, bos_token_id=eod_id, eos_token_id=eod_id, hidden_dropout=0.0,
        attention_dropout=0.0, architectures=["GPTNeoXForCausalLM"],
    )


def build_model(size: str, vocab_size: int, max_positions: int, eod_id: int, seed: int) -> Any:
    """A freshly initialized GPTNeoXForCausalLM; the same seed gives the same weights on any machine."""
    import torch
    from transformers import GPTNeoXForCausalLM

    torch.manual_seed(seed)
    config = model_config(size, vocab_size, max_positions, eod_id)
    return GPTNeoXForCausalLM._from_config(config, attn_implementation="sdpa", dtype=torch.float32)


def matmul_parameters(model: Any) -> int:
    """Parameters that take part in matrix multiplies: all but the input embedding (the unembedding counts)."""
    embedding = model.get_input_embeddings().weight.numel()
    return sum(p.numel() for p in model.parameters()) - embedding


def flops_per_token(model: Any, seq_len: int) -> float:
    """Training FLOPs per token, 6N + 12 L d T (PaLM appendix B; nanoGPT and torchtitan use the same)."""
    c = model.config
    return 6.0 * matmul_parameters(model) + 12.0 * c.num_hidden_layers * c.hidden_size * seq_len


# Dense bf16 peak per device (NVIDIA datasheets, without 2:4 sparsity), as torchtitan tabulates them.
GPU_PEAK_BF16 = {"H200": 989e12, "H100 NVL": 835e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12,
                 "B200": 2250e12, "GB200": 2500e12, "L40S": 362e12, "A10G": 70e12}


def peak_flops(device: Any, threads: int, configured: float | None) -> tuple[float | None, str]:
    """(peak FLOP/s of one device, where that figure comes from)."""
    import torch

    if configured:
        return configured, "--peak-flops"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, value in GPU_PEAK_BF16.items():
            if key in name:
                return value, f"datasheet dense bf16 peak for {key} (matched '{name}')"
        return None, f"unknown GPU '{name}': pass --peak-flops for MFU"
    return _measured_cpu_peak(threads), f"measured: fp32 1024x1024 matmul on this CPU, {threads} thread(s)"


def _measured_cpu_peak(threads: int) -> float:
    """The best of a few fp32 matmuls: a practical ceiling, since CPUs have no single datasheet peak."""
    import torch

    a = torch.randn(1024, 1024, generator=torch.Generator().manual_seed(0))
    torch.mm(a, a)  # warm up
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        torch.mm(a, a)
        best = min(best, time.perf_counter() - start)
    return 2 * 1024**3 / best
