"""Where tuned models live, and how their names resolve to weights.

Under cache_dir()/tuned/ ($READINGROOM_TUNED overrides; beside the fetched models, so they survive like
them):
    adapters/<name>/    a peft LoRA adapter: adapter_model.safetensors,
                        adapter_config.json, card.json, README.md
    embedders/<name>/   a sentence-transformers folder: model.safetensors, ...,
                        card.json

Each card pins the weights by sha256 and names the base model by the sha256
of its weights, so a name always means the same bytes (as the catalogue's
names do). `models.resolve` asks `resolve_tuned` before looking for paths:
"adapter:NAME", "embedder:NAME", or a bare NAME that only one of them has.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from readingroom.models.catalogue import CATALOGUE, GENERATOR, GGUF, ModelError
from readingroom.models.resolve import ResolvedModel, register_resolver, resolve, resolve_path
from readingroom.models.fetch import checked_sha256
from readingroom.paths import cache_dir

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
CARD = "card.json"
KINDS = ("adapter", "embedder")


def tuned_dir() -> Path:
    """$READINGROOM_TUNED, else cache_dir()/tuned (tests and notebooks keep their own)."""
    if os.environ.get("READINGROOM_TUNED"):
        return Path(os.environ["READINGROOM_TUNED"]).expanduser()
    return cache_dir() / "tuned"


def folder_of(kind: str, name: str) -> Path:
    return tuned_dir() / f"{kind}s" / check_name(name)


def check_name(name: str) -> str:
    if not NAME.fullmatch(name or ""):
        raise ModelError(f"{name!r} cannot name a tuned model: use letters, digits, '.', '_' and '-' "
                         "(64 at most), starting with a letter or digit")
    return name


def saved(kind: str) -> list[str]:
    folder = tuned_dir() / f"{kind}s"
    return sorted(p.name for p in folder.iterdir() if (p / CARD).is_file()) if folder.is_dir() else []


def read_card(folder: Path) -> dict:
    try:
        card = json.loads((folder / CARD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{folder} has no {CARD} (the model card)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"{folder / CARD}: not a JSON model card ({e})") from None
    if not isinstance(card, dict):
        raise ModelError(f"{folder / CARD}: a model card is a JSON object")
    return card


def write_card(folder: Path, card: dict) -> None:
    (folder / CARD).write_text(json.dumps(card, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def base_by_sha256(sha256: str, role: str) -> str:
    """The catalogue name of the model whose weights have `sha256`."""
    for name, artifact in CATALOGUE.items():
        if artifact.sha256 == sha256 and artifact.role == role:
            return name
    raise ModelError(f"the base model with sha256 {sha256} is not in the catalogue")


def resolve_tuned(spec: str, progress: bool = False) -> ResolvedModel | None:
    kind, _, name = spec.partition(":")
    if kind not in KINDS:
        kind, name = None, spec
    if not NAME.fullmatch(name):
        return None
    kinds = [kind] if kind else [k for k in KINDS if (folder_of(k, name) / CARD).is_file()]
    if not kinds:
        return None
    if len(kinds) > 1:
        raise ModelError(f"{name} is both a saved adapter and a tuned embedder: say adapter:{name} or embedder:{name}")
    folder = folder_of(kinds[0], name)
    if not (folder / CARD).is_file():
        raise ModelError(f"no saved {kinds[0]} named {name} (see `readingroom adapters list`)")
    return (_resolve_adapter if kinds[0] == "adapter" else _resolve_embedder)(folder, progress)


def _check_pinned(file: Path, card: dict, key: str, progress: bool) -> str:
    digest = checked_sha256(file, progress)
    if digest != card.get(key):
        raise ModelError(f"{file}: sha256 {digest} does not match its card's {card.get(key)}: "
                         "the weights were changed or damaged")
    return digest


def _resolve_adapter(folder: Path, progress: bool) -> ResolvedModel:
    card = read_card(folder)
    digest = _check_pinned(folder / ADAPTER_WEIGHTS, card, "adapter_sha256", progress)
    base = resolve(base_by_sha256(card.get("base_sha256", ""), GENERATOR), role=GENERATOR, progress=progress)
    return ResolvedModel(f"adapter:{folder.name}", base.path, GGUF, GENERATOR, digest, base.artifact,
                         adapter=folder, base=base)


def _resolve_embedder(folder: Path, progress: bool) -> ResolvedModel:
    card = read_card(folder)
    resolved = resolve_path(folder, progress, name=f"embedder:{folder.name}")
    if resolved.identity != card.get("sha256"):
        raise ModelError(f"{folder}: the weights' sha256 {resolved.identity} does not match its card's "
                         f"{card.get('sha256')}: the weights were changed or damaged")
    return resolved



# Tuned names resolve wherever a model is named (ask --model adapter:faq, ...).
register_resolver(resolve_tuned)
