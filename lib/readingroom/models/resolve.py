"""Turning a model's name into a checked path without touching the network:
a catalogue name, a path (a sentence-transformers folder or a .gguf file), a
Hub id already in the local Hugging Face cache, or whatever a registered
resolver knows (tuned models register theirs: readingroom.tune.registry)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable
from pathlib import Path

from readingroom.models.catalogue import (CATALOGUE, EMBEDDER, GENERATOR, GGUF, PICKLE_SUFFIXES, SAFETENSORS_WEIGHTS,
                                          SENTENCE_TRANSFORMERS, Artifact, ModelError, main_file, model_path)
from readingroom.models.fetch import check_folder, checked_sha256, safetensors_weights


@dataclass(frozen=True)
class ResolvedModel:
    name: str
    path: Path  # the folder of a sentence-transformers model, the .gguf file of a generator
    format: str
    role: str
    identity: str  # the sha256 of the weights (model.safetensors or the .gguf): changes when they do
    artifact: Artifact | None = None  # None for a path or Hub id outside the catalogue
    # A LoRA adapter on a generator (readingroom.tune.adapters): its folder,
    # and the base model it was trained on (`path` is then the base's .gguf).
    adapter: Path | None = None
    base: "ResolvedModel | None" = None


def resolve(spec: str, role: str | None = None, progress: bool = False) -> ResolvedModel:
    """A model ready to load, from a catalogue name, a path to a
    sentence-transformers folder or a .gguf file, or a Hub id ("org/name", or
    "org/name/file.gguf") already in the local Hugging Face cache. Never
    reaches the network; hashes weights only when they changed since they
    were last hashed."""
    if spec in CATALOGUE:
        resolved = _resolve_catalogue(CATALOGUE[spec], progress)
    elif (tuned := _resolve_tuned(spec, progress)) is not None:
        resolved = tuned
    elif Path(spec).expanduser().exists():
        resolved = resolve_path(Path(spec).expanduser(), progress)
    elif _looks_like_hub_id(spec):
        resolved = _resolve_hub_cache(spec, progress)
    else:
        raise ModelError(f"unknown model '{spec}': not in the catalogue ({', '.join(CATALOGUE)}), "
                         "not a saved adapter or tuned embedder, not an existing file or folder, "
                         "and not a Hub id (org/name)")
    if role is not None and resolved.role != role:
        def a(word: str) -> str:
            return f"an {word}" if word[0] in "aeiou" else f"a {word}"
        raise ModelError(f"{spec} is {a(resolved.role)} ({resolved.format}), not {a(role)}")
    return resolved


# Resolvers for names this module does not know: a feature above models (the
# tuned models of readingroom.tune) registers one, so that its names work
# wherever a model is named, without models importing it.
Resolver = Callable[[str, bool], "ResolvedModel | None"]
_RESOLVERS: list[Resolver] = []


def register_resolver(resolver: Resolver) -> None:
    """Add a resolver: called with (spec, progress), it returns a
    ResolvedModel for names it knows and None for the rest."""
    if resolver not in _RESOLVERS:
        _RESOLVERS.append(resolver)


def _resolve_tuned(spec: str, progress: bool) -> ResolvedModel | None:
    for resolver in _RESOLVERS:
        if (resolved := resolver(spec, progress)) is not None:
            return resolved
    return None


def _resolve_catalogue(artifact: Artifact, progress: bool) -> ResolvedModel:
    file = main_file(artifact)
    if not file.exists():
        raise ModelError(f"{artifact.name} is not fetched yet; run `readingroom models fetch {artifact.name}`")
    digest = checked_sha256(file, progress)
    if digest != artifact.sha256:
        raise ModelError(f"{file}: sha256 {digest} does not match the pinned {artifact.sha256} for "
                         f"{artifact.name}; the file is damaged or was changed: "
                         f"run `readingroom models fetch {artifact.name}` to replace it")
    if artifact.format == SENTENCE_TRANSFORMERS:
        check_folder(artifact, model_path(artifact), progress)  # configs, tokenizer, modules: no code
    return ResolvedModel(artifact.name, model_path(artifact), artifact.format, artifact.role,
                         artifact.sha256, artifact)


def resolve_path(path: Path, progress: bool, name: str | None = None) -> ResolvedModel:
    path = path.absolute()  # not resolve(): a Hugging Face cache links names to blobs without suffixes
    if path.is_dir():
        weights = safetensors_weights(path)
        check_folder(None, path, progress)  # no code, only sentence-transformers' own modules
        return ResolvedModel(name or path.name, path, SENTENCE_TRANSFORMERS, EMBEDDER,
                             checked_sha256(weights, progress))
    if path.suffix.lower() == ".gguf":
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF":
                raise ModelError(f"{path} is not a GGUF file (it does not start with 'GGUF')")
        return ResolvedModel(name or path.name, path, GGUF, GENERATOR, checked_sha256(path, progress))
    if path.suffix in PICKLE_SUFFIXES:
        raise ModelError(f"{path} is a pickle file, which can run code when it is loaded; "
                         "Reading Room loads only safetensors and GGUF weights")
    raise ModelError(f"{path} is neither a sentence-transformers folder nor a .gguf file")


def _looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    names_ok = all(re.fullmatch(r"[\w.-]+", p) for p in parts)
    return names_ok and (len(parts) == 2 or len(parts) > 2 and spec.endswith(".gguf"))


def _resolve_hub_cache(spec: str, progress: bool) -> ResolvedModel:
    try:
        from huggingface_hub import snapshot_download, try_to_load_from_cache
    except ImportError:
        raise ModelError(f"{spec} looks like a Hugging Face Hub id, but huggingface_hub is not installed") from None
    not_cached = (f"{spec} is not in the local Hugging Face cache (nothing is downloaded here); "
                  f"catalogue models are fetched with `readingroom models fetch NAME` ({', '.join(CATALOGUE)})")
    org, repo, *rest = spec.split("/")
    if rest:  # org/name/file.gguf: one file of a repository
        found = try_to_load_from_cache(f"{org}/{repo}", "/".join(rest))
        if not isinstance(found, str):
            raise ModelError(not_cached)
        return resolve_path(Path(found), progress, name=spec)
    try:
        folder = Path(snapshot_download(spec, local_files_only=True))
    except Exception as e:  # LocalEntryNotFoundError and its kin: not there, or not complete
        raise ModelError(f"{not_cached} ({type(e).__name__})") from None
    ggufs = sorted(folder.rglob("*.gguf"))
    if ggufs and not (folder / SAFETENSORS_WEIGHTS).exists():
        if len(ggufs) > 1:
            choices = ", ".join(f"{spec}/{g.relative_to(folder)}" for g in ggufs)
            raise ModelError(f"{spec} holds several .gguf files; name one: {choices}")
        return resolve_path(ggufs[0], progress, name=spec)
    return resolve_path(folder, progress, name=spec)
