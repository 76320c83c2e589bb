"""Finding LoRA adapters and deciding which one a run uses.

An adapter is a peft folder plus `manifest.json` (written by `tagsmith train`): the base model,
the template and vocabularies it was trained with. Shipped adapters live in the repository's
`adapters/` (copied into the wheel as `tagsmith/adapters`). A run that names no adapter gets the
shipped one trained for exactly its model and vocabularies, if any, so the embedded model with
the built-in vocabulary is tuned out of the box. A vocabulary no adapter was trained on still
gets a shipped adapter of its base model (with a note saying so), preferably the general one
trained on many small vocabularies: an adapter trained without one WDC-PAVE category still far
outscored the bare model on it (README, "The shipped adapter"), so what it learnt is the task,
not only the values. `none` always means the bare model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tagsmith.errors import TagsmithError
from tagsmith.vocabulary import VocabularySet

MANIFEST = "manifest.json"
AUTO = "auto"
NONE = "none"


def adapter_dirs() -> list[Path]:
    """Where shipped adapters live: the package copy (wheel installs) then the repo's adapters/."""
    here = Path(__file__).resolve().parent
    return [d for d in (here / "adapters", here.parents[1] / "adapters") if d.is_dir()]


def trained_shape(folder: str | Path) -> str:
    """The answer shape (answers.py) the adapter in `folder` was trained to write; adapters from
    before the manifest recorded it wrote the full shape."""
    return str((read_manifest(folder) or {}).get("answer_shape", "full"))


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def is_adapter(folder: Path) -> bool:
    return (folder / "adapter_config.json").is_file()


def shipped_adapters() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in adapter_dirs():
        for sub in sorted(d.iterdir()):
            if sub.is_dir() and is_adapter(sub):
                found.setdefault(sub.name, sub)
    return found


def base_model_of(folder: Path) -> str | None:
    """The base model an adapter was trained on: its manifest's record, else the model peft
    wrote into adapter_config.json (named the way tagsmith names models, where it still exists)."""
    manifest = read_manifest(folder)
    if manifest and manifest.get("base_model"):
        return str(manifest["base_model"])
    try:
        base = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError):
        return None
    if not base:
        return None
    from tagsmith.model_store import model_id

    try:
        return model_id(base) if Path(base).exists() else str(base)
    except TagsmithError:
        return str(base)


def check_adapter(folder: str | Path, model_id: str, vocabularies: VocabularySet | None = None) -> list[str]:
    """Refuse an adapter trained on another base model (with or without a manifest); warn
    (returned) about other vocabularies."""
    folder = Path(folder)
    if not is_adapter(folder):
        raise TagsmithError(f"{folder}: not a peft adapter folder (no adapter_config.json)")
    base = base_model_of(folder)
    if base is not None and base != model_id:
        raise TagsmithError(f"{folder}: adapter was trained on {base!r}, not {model_id!r}")
    manifest = read_manifest(folder)
    if manifest is None:
        return [f"{folder}: no {MANIFEST}; cannot check which vocabulary it was trained for"]
    trained = manifest.get("vocabularies") or {}
    return [f"{folder}: vocabulary {v.name!r} differs from the one the adapter was trained on"
            for v in vocabularies or [] if v.name in trained and trained[v.name] != v.digest]


def trained_for(manifest: dict[str, Any], model_id: str, vocabularies: VocabularySet) -> bool:
    """True when the adapter was trained on this base model and on every one of these vocabularies,
    unchanged: only then is using it without being asked safe."""
    trained = manifest.get("vocabularies") or {}
    return (manifest.get("base_model") == model_id and len(vocabularies) > 0
            and all(trained.get(v.name) == v.digest for v in vocabularies))


def same_categories(manifest: dict[str, Any], vocabularies: VocabularySet) -> bool:
    """True when the adapter was trained on vocabularies of these categories, though not these
    exact ones (vocabulary names are `<set>/<category>`: `wdc-pave/jewelry` and the train-only
    `wdc-pave-train/jewelry` are the same category with other values)."""
    trained = {name.rsplit("/", 1)[-1] for name in manifest.get("vocabularies") or {}}
    return bool(trained) and len(vocabularies) > 0 and all(v.name.rsplit("/", 1)[-1] in trained
                                                           for v in vocabularies)


@dataclass
class AdapterChoice:
    """The adapter a run uses (None = the bare model), the template it was trained with, and
    anything the user should be told."""

    path: str | None
    template: str | None = None
    warnings: list[str] = field(default_factory=list)
    #: For 'auto': whether the adapter was trained on exactly this run's vocabularies.
    trained_on_vocabulary: bool = True
    #: The general tagging adapter (trained on many small vocabularies, none of them this run's).
    general: bool = False
    #: Trained on vocabularies of these categories, with other values (for 'auto').
    same_categories: bool = False

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else NONE


def find_adapter(spec: str) -> Path:
    """An adapter folder, or the folder of the shipped adapter of that name."""
    folder = Path(spec).expanduser()
    if is_adapter(folder):
        return folder
    shipped = shipped_adapters()
    if spec not in shipped:
        names = ", ".join(sorted(shipped)) or "none ship"
        raise TagsmithError(f"--adapter {spec!r}: not a peft adapter folder (no adapter_config.json) nor "
                            f"a shipped adapter ({names})")
    return shipped[spec]


def choose_adapter(spec: str | None, model_id: str, vocabularies: VocabularySet,
                   examples: bool = False) -> AdapterChoice:
    """Resolve --adapter: None/'auto', 'none', the name of a shipped adapter, or a folder.

    'auto' is the shipped adapter for this model and vocabulary; else one trained on the same
    categories; else the general tagging adapter (trained on many small vocabularies to read a
    facet's options: eval/train_general.py); else any of the same model (the task transfers);
    else none. An adapter trained with worked examples in its prompts is
    picked only when the run shows worked examples too (`examples`) and it was trained for
    exactly these vocabularies: with examples it beats the plain one, without them it does worse
    (README, "Quality on WDC-PAVE validation")."""
    if spec is not None and spec.lower() == NONE:
        return AdapterChoice(None)
    if spec is None or spec.lower() == AUTO:
        every = {folder: read_manifest(folder) or {} for folder in shipped_adapters().values()}
        if examples:
            for folder, manifest in every.items():
                if manifest.get("examples") and trained_for(manifest, model_id, vocabularies):
                    return AdapterChoice(str(folder), manifest.get("template"))
        manifests = {folder: m for folder, m in every.items()
                     if not m.get("examples") and m.get("base_model") == model_id}
        for folder, manifest in manifests.items():
            if trained_for(manifest, model_id, vocabularies):
                return AdapterChoice(str(folder), manifest.get("template"))
        # a vocabulary none was trained on: one trained on the same categories (their values
        # since changed), else the general tagging adapter, else any of this model: the task transfers
        ranked = sorted(manifests.items(), key=lambda fm: (not same_categories(fm[1], vocabularies),
                                                           not fm[1].get("general")))
        if not ranked:
            return AdapterChoice(None)
        folder, manifest = ranked[0]
        return AdapterChoice(str(folder), manifest.get("template"), trained_on_vocabulary=False,
                             general=bool(manifest.get("general")),
                             same_categories=same_categories(manifest, vocabularies))
    folder = find_adapter(spec)
    warnings = check_adapter(folder, model_id, vocabularies)
    manifest = read_manifest(folder) or {}
    return AdapterChoice(str(folder.resolve()), manifest.get("template"), warnings)
