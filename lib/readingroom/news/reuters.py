"""The offline sample feed: Reuters-21578 newswire, as Debian's `r-cran-tm`
package ships it.

R's text-mining package tm carries samples of the Reuters-21578 collection
(Lewis 1997; free for research use) for its examples: 50 articles on
acquisitions (texts/acq), 20 on crude oil (texts/crude), one article per XML
file, and the first 10 articles of the collection in one file
(texts/reuters-21578.xml); and one article of Reuters Corpus Volume 1
(texts/rcv1_2330.xml). They are the only real news text found in a package
registry (STACK.md). All are from 26 February to 2 March 1987, except the
RCV1 one (1996), with Reuters' own topic labels (acq, crude ...), which
notebook 07 uses to measure how well interests are matched.

The package is fetched like the other registry corpora (corpora.py): one
pinned version, its sha256 checked, unpacked into the cache, read in place
when R's tm is installed system-wide. The pin is for the amd64 build; the
texts are the same in every architecture's package, but their .deb files
differ, so elsewhere give the package with `--from` after checking it.

An article's guid is its NEWID, unique in the collection, and the feed is
the sample's name, not a path: the article that is both texts/acq/reut-00001
and the tenth of reuters-21578.xml is one item.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from readingroom.corpus.corpora import RegistryCorpus, fetch
from readingroom.corpus.sources import Problem
from readingroom.corpus.textio import SourceError
from readingroom.news.feeds import DEFAULT_MAX_MB, iter_xml
from readingroom.news.items import NewsItem
from readingroom.news.reuters_xml import OUTLET

NAME = "reuters-21578"


def _read_folder(folder: Path, version: str):
    return read_folder(folder)


PACKAGE = RegistryCorpus(
    name=NAME,
    description="Reuters-21578 newswire samples (acq, crude; Feb-Mar 1987) from R's tm package",
    registry="debian",
    package="r-cran-tm",
    version="0.7-11-1",
    filename="r-cran-tm_0.7-11-1_amd64.deb",
    sha256="483fa4e8c8fec74a36875470932b71c21ed2209bbab504f50844aca2d24cb51b",
    inner="usr/lib/R/site-library/tm/texts",
    installed="/usr/lib/R/site-library/tm/texts",
    read_folder=_read_folder,
    licence="Reuters-21578: free for research use; package GPL-3",
)


def sample_folder(download: bool = True, package_file: Path | None = None) -> Path:
    """The folder of tm's texts: fetched (once) and verified, see corpora.fetch."""
    return fetch(PACKAGE, package_file=package_file, download=download)


def sample_files(folder: Path) -> list[Path]:
    """The sample's XML files in a stable order: the single-file collection
    first, then each topic's folder."""
    files = [folder / "reuters-21578.xml"] + sorted((folder / "acq").glob("*.xml")) \
        + sorted((folder / "crude").glob("*.xml")) + [folder / "rcv1_2330.xml"]
    return [f for f in files if f.exists()]


def read_folder(folder: Path, max_mb: float = DEFAULT_MAX_MB) -> Iterator[NewsItem | Problem]:
    files = sample_files(folder)
    if not files:
        raise SourceError(folder, "holds none of the Reuters sample files (texts/acq, texts/crude ...)")
    for path in files:
        with open(path, "rb") as f:
            yield from iter_xml(f, NAME, f"{NAME}/{path.relative_to(folder).as_posix()}", OUTLET, max_mb)
