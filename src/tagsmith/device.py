"""Which dtype a model runs in on this hardware: one rule for the engines and for training."""

from __future__ import annotations

from pathlib import Path


def pick_dtype(dtype: str, device: str) -> str:
    """'auto' = bfloat16 where the hardware does it natively (CUDA, CPUs with AVX512-BF16/AMX),
    float32 elsewhere (emulated bf16 is slower than float32)."""
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        return "bfloat16"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"
