"""Reading bytes and text from files that nobody vouched for.

Every failure here is a SourceError that names the file and says what is
wrong with it in words a reader can act on.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

MB = 1024 * 1024
DEFAULT_MAX_MB = 20.0  # one document; containers (dumps, exports) are streamed


class SourceError(Exception):
    """A file, or a record in it, that cannot be read. `location` is the file
    (and record) and `problem` what is wrong, e.g. 'is empty'."""

    def __init__(self, location: str | Path, problem: str):
        super().__init__(f"{location}: {problem}")
        self.location = str(location)
        self.problem = problem


COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def logical_suffix(path: Path) -> str:
    """'.md' for 'secA1.md.gz': the format inside a compressed file."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def open_binary(path: Path):
    """A binary file object, decompressing .gz, .bz2 and .xz on the fly."""
    opener = COMPRESSED.get(path.suffix.lower())
    return opener(path, "rb") if opener else open(path, "rb")


def read_bytes(path: Path, max_mb: float = DEFAULT_MAX_MB) -> bytes:
    """The (decompressed) bytes of one document, refusing empty and huge files."""
    limit = int(max_mb * MB)
    try:
        with open_binary(path) as f:
            data = f.read(limit + 1)
    except (OSError, EOFError, lzma.LZMAError) as e:  # gzip/bz2 errors are OSErrors
        raise SourceError(path, f"cannot be read: {e} (truncated or damaged?)") from e
    if len(data) > limit:
        raise SourceError(
            path,
            f"is over the {max_mb:g} MB limit for one document; split it, or raise the limit "
            f"(--max-mb)",
        )
    if not data.strip():
        raise SourceError(path, "is empty")
    return data


def looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark
        return False
    if b"\x00" in head:
        return True
    # Control characters other than tab, newline, form feed and carriage return.
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return controls > len(head) * 0.05


def decode(data: bytes, path: Path) -> tuple[str, list[str]]:
    """Text from bytes, and warnings a person should see. UTF-8 (with or
    without a BOM) and UTF-16 with a BOM are read as they are; anything else is
    guessed with charset-normalizer and the guess is reported."""
    warnings: list[str] = []
    if looks_binary(data):
        raise SourceError(path, "looks like a binary file, not text")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            if e.start >= len(data) - 3:
                # Only the last character is cut off: the file was truncated.
                text = data[: e.start].decode("utf-8-sig")
                warnings.append("ends in the middle of a character (truncated?); the rest was read")
            else:
                text, encoding = _guess(data, path)
                warnings.append(f"is not UTF-8; read it as {encoding} (check accented letters)")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if not text.strip():
        raise SourceError(path, "has no text")
    return text, warnings


def _guess(data: bytes, path: Path) -> tuple[str, str]:
    from charset_normalizer import from_bytes

    best = from_bytes(data[: 4 * MB]).best()
    if best is None or best.chaos > 0.3:
        raise SourceError(path, "is not UTF-8 and no other text encoding fits it")
    try:
        return data.decode(best.encoding), best.encoding
    except UnicodeDecodeError as e:
        raise SourceError(path, f"is not UTF-8 and not {best.encoding} either ({e.reason})") from e


def read_text(path: Path, max_mb: float = DEFAULT_MAX_MB) -> tuple[str, list[str]]:
    return decode(read_bytes(path, max_mb), path)
