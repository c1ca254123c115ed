"""Saved LoRA adapters: a name, the peft files and a model card; listed,
exported as a folder and imported elsewhere.

Wherever a generator is named (`load_generator`, `readingroom ask --model`,
the chat's settings), "adapter:NAME" (or NAME alone) gives the base model
with the adapter merged in. It runs in transformers, not llama.cpp: an
adapter converted to a GGUF LoRA by hand (gguf package, llama.cpp's tensor
names and alpha) loaded and ran in llama.cpp 0.3.36, but its effect on the
logits did not match peft's (correlation 0.16-0.69 over the vocabulary on
SmolLM2, where the base models agreed at 0.999), so it is not used: a
slower answer that is right beats a fast one that is not what was trained.

The card (card.json, and README.md in words) says what a reader of the
adapter needs to trust it: the base model and the sha256 of its weights,
the adapter's own sha256, the dataset's hash and size, the settings, and
the held-out metrics. Importing checks all of it: the folder holds only
safetensors and JSON (and README.md); weights in a pickle format are
refused, never loaded; the card is present and its sha256 matches the
weights; the base model's sha256 is one the catalogue knows.
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from readingroom.evaluate.metrics import perplexity
from readingroom.models.catalogue import GENERATOR, PICKLE_SUFFIXES, ModelError
from readingroom.hashing import file_sha256
from readingroom.tune.registry import (ADAPTER_CONFIG, ADAPTER_WEIGHTS, CARD, base_by_sha256, check_name, folder_of, read_card,
                       saved, write_card)

ALLOWED = {ADAPTER_WEIGHTS, ADAPTER_CONFIG, CARD, "README.md"}


class AdapterError(ModelError):
    pass


def card_text(card: dict) -> str:
    metrics = "\n".join(f"- {k}: {v}" for k, v in card.get("metrics", {}).items())
    settings = "\n".join(f"- {k}: {v}" for k, v in card.get("settings", {}).items())
    return (f"# {card['name']}\n\nA LoRA adapter for {card['base_model']} (weights sha256 "
            f"{card['base_sha256']}), trained by Reading Room on {card['dataset']['examples']} examples "
            f"(dataset sha256 {card['dataset']['sha256']}).\n\nLoad it with "
            f"`readingroom ask --model adapter:{card['name']} ...`.\n\n## Metrics (held out)\n\n{metrics}\n\n"
            f"## Settings\n\n{settings}\n")


def save_adapter(name: str, peft_folder: Path, base, settings, result) -> Path:
    """Copy a trained adapter under `name` with its card; its folder."""
    check_name(name)
    target = folder_of("adapter", name)
    staging = target.with_name(f".{name}.saving")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for file in (ADAPTER_WEIGHTS, ADAPTER_CONFIG):
        shutil.copy2(peft_folder / file, staging / file)
    card = {
        "name": name, "kind": "lora-adapter", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "base_model": base.name, "base_sha256": base.identity,
        "adapter_sha256": file_sha256(staging / ADAPTER_WEIGHTS),
        "dataset": {"sha256": result.dataset_sha256, "examples": result.train_examples + result.held_out_examples,
                    "train": result.train_examples, "held_out": result.held_out_examples},
        "settings": settings.to_dict(),
        "metrics": {"steps": result.steps, "stopped": result.stopped,
                    "held_out_loss_before": round(result.base_eval_loss, 4),
                    "held_out_loss_after": round(result.best_eval_loss, 4) if result.best_eval_loss else None,
                    "held_out_perplexity_before": round(perplexity(result.base_eval_loss), 3),
                    "held_out_perplexity_after": (round(perplexity(result.best_eval_loss), 3)
                                                  if result.best_eval_loss else None),
                    "steps_per_second": round(result.steps_per_second, 3), "device": result.device},
    }
    write_card(staging, card)
    (staging / "README.md").write_text(card_text(card), encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def list_adapters() -> list[dict]:
    """The saved adapters' cards."""
    cards = []
    for name in saved("adapter"):
        try:
            cards.append(read_card(folder_of("adapter", name)))
        except ModelError as e:
            cards.append({"name": name, "problem": str(e)})
    return cards


def export_adapter(name: str, target: Path) -> Path:
    """A copy of the adapter's folder at `target` (a new folder), to hand on."""
    source = folder_of("adapter", name)
    if not (source / CARD).exists():
        raise AdapterError(f"no saved adapter named {name}")
    target = Path(target)
    if target.exists():
        raise AdapterError(f"{target} exists already; name a new folder")
    shutil.copytree(source, target)
    return target


def check_adapter_folder(folder: Path) -> dict:
    """The card of an adapter folder, after every check in the module notes."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AdapterError(f"{folder} is not a folder")
    for item in sorted(folder.iterdir()):
        if item.suffix in PICKLE_SUFFIXES:
            raise AdapterError(f"{item}: weights in a pickle format can run code when they are loaded; "
                               "Reading Room imports safetensors only")
        if item.name not in ALLOWED:
            raise AdapterError(f"{item}: unexpected file; an adapter folder holds only {', '.join(sorted(ALLOWED))}")
    for required in (CARD, ADAPTER_WEIGHTS, ADAPTER_CONFIG):
        if not (folder / required).is_file():
            raise AdapterError(f"{folder} has no {required}")
    card = read_card(folder)
    for key in ("name", "base_sha256", "adapter_sha256"):
        if not isinstance(card.get(key), str):
            raise AdapterError(f"{folder / CARD}: the card has no {key}")
    digest = file_sha256(folder / ADAPTER_WEIGHTS)
    if digest != card["adapter_sha256"]:
        raise AdapterError(f"{folder / ADAPTER_WEIGHTS}: sha256 {digest} does not match the card's "
                           f"{card['adapter_sha256']}")
    try:
        base_by_sha256(card["base_sha256"], GENERATOR)
    except ModelError:
        raise AdapterError(f"{folder / CARD}: the base model's sha256 {card['base_sha256']} is not one of the "
                           "catalogue's generators; this adapter was trained on a model Reading Room does not know") from None
    try:
        config = json.loads((folder / ADAPTER_CONFIG).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AdapterError(f"{folder / ADAPTER_CONFIG}: not JSON ({e})") from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise AdapterError(f"{folder / ADAPTER_CONFIG}: not a peft LoRA configuration")
    _check_safetensors(folder / ADAPTER_WEIGHTS)
    return card


def _check_safetensors(path: Path) -> None:
    """The file is safetensors holding LoRA tensors only (its header is read, nothing executed)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            names = list(f.keys())
    except Exception as e:  # the reader raises several kinds on a damaged file
        raise AdapterError(f"{path}: not a readable safetensors file ({e})") from None
    if not names or not all(".lora_A." in n or ".lora_B." in n for n in names):
        raise AdapterError(f"{path}: holds tensors that are not LoRA weights")


def import_adapter(folder: Path, name: str | None = None, *, replace: bool = False) -> Path:
    """Check an exported adapter folder and save it as `name` (default: its card's)."""
    card = check_adapter_folder(folder)
    name = check_name(name or card["name"])
    target = folder_of("adapter", name)
    if target.exists() and not replace:
        raise AdapterError(f"an adapter named {name} exists already; choose another name or replace it")
    staging = target.with_name(f".{name}.importing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for file in ALLOWED:
        if (Path(folder) / file).exists():
            shutil.copy2(Path(folder) / file, staging / file)
    card["name"] = name
    write_card(staging, card)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target
