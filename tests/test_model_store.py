import threading
import time

import pytest

from tagsmith import model_store
from tagsmith.errors import ModelNotFoundError
from tagsmith.model_store import prepare_gguf, resolve_model


def test_local_folder_and_hub_ids(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    loc = resolve_model(str(tmp_path))
    assert loc.is_local and loc.path == str(tmp_path.resolve())
    hub = resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct")
    assert not hub.is_local and hub.path == "HuggingFaceTB/SmolLM2-360M-Instruct"


@pytest.mark.parametrize("spec", ["./missing", "/nope/model", "~/x/y", "model.gguf", "a/b/c"])
def test_missing_paths_are_not_mistaken_for_hub_ids(spec):
    with pytest.raises(ModelNotFoundError, match="no model folder"):
        resolve_model(spec)


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_conversion_happens_once_under_concurrency(tmp_path, monkeypatch):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    calls = []

    def slow_convert(src, target):
        calls.append(src)
        time.sleep(0.3)
        (target / "config.json").write_text("{}")

    monkeypatch.setattr(model_store, "_convert_gguf", slow_convert)
    results = []
    threads = [threading.Thread(target=lambda: results.append(prepare_gguf(gguf, root=tmp_path)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(set(results)) == 1 and (results[0] / "config.json").is_file()
    assert [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")] == [results[0].name]


def test_failed_conversion_leaves_nothing_behind(tmp_path, monkeypatch):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")

    def broken(src, target):
        (target / "half").write_text("x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(model_store, "_convert_gguf", broken)
    with pytest.raises(RuntimeError):
        prepare_gguf(gguf, root=tmp_path)
    assert [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")] == []


def test_an_adapters_digest_follows_its_weights_not_its_manifest(tmp_path):
    from tagsmith.model_store import folder_digest

    (tmp_path / "adapter_model.safetensors").write_bytes(b"weights")
    (tmp_path / "manifest.json").write_text("{}")
    before = folder_digest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"min_confidence": 0.4}')  # metadata: caches stay valid
    assert folder_digest(tmp_path) == before
    (tmp_path / "adapter_model.safetensors").write_bytes(b"retrained")
    assert folder_digest(tmp_path) != before
