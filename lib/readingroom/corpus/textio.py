"""Reading bytes and text from files that nobody vouched for.

Every failure here is a SourceError that names the file and says what is
wrong with it in words a reader can act on.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import zipfile
from pathlib import Path

MB = 1024 * 1024
DEFAULT_MAX_MB = 20.0  # one document; containers (dumps, exports) are streamed
# Text compresses 3 to 10 times, and even repetitive XML rarely past 100;
# a deflate bomb reaches 1000. A stream that grows more than this many
# times, and past a few megabytes, is refused before it fills memory.
MAX_RATIO = 200
RATIO_GRACE = 4 * MB  # small files may compress much better than that: fine

# C0 controls but tab and newline (carriage returns are turned into newlines
# first), DEL, and the C1 controls: what moves a terminal's cursor, sets its
# title (OSC) or starts an escape sequence (ESC, CSI) when it is printed.
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # CR stays: progress bars
# CONTROLS within ASCII, as bytes: bytes.translate deletes them in one C loop,
# several times faster than the regex scans (ingestion looks at every block).
ASCII_CONTROLS = bytes([*range(0x00, 0x09), *range(0x0b, 0x20), 0x7f])


def strip_controls(text: str) -> str:
    """Text without control characters (tab and newline stay). Corpus text
    is untrusted: an ESC or OSC sequence in a title is data, and must never
    reach a terminal as a command."""
    if not text:
        return text
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.isascii():  # most text: the C1 range cannot occur, and nothing to strip is the rule
        data = text.encode("ascii")
        if len(data.translate(None, ASCII_CONTROLS)) == len(data):
            return text
    return CONTROLS.sub("", text)


def terminal_safe(text: str) -> str:
    """What may be printed to a terminal: `text` without control characters
    (tab, newline and carriage return stay)."""
    return TERMINAL_CONTROLS.sub("", text) if text else text


class SourceError(Exception):
    """A file, or a record in it, that cannot be read. `location` is the file
    (and record) and `problem` what is wrong, e.g. 'is empty'."""

    def __init__(self, location: str | Path, problem: str):
        super().__init__(f"{location}: {problem}")
        self.location = str(location)
        self.problem = problem


class TooLarge(SourceError):
    """A file over its size limit (unpacked)."""


COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def logical_suffix(path: Path) -> str:
    """'.md' for 'secA1.md.gz': the format inside a compressed file."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


class Inflated(io.RawIOBase):
    """A decompressing stream that stops with a SourceError once it has given
    more than `limit` bytes, or grown more than MAX_RATIO times the file it
    comes from: a bomb is refused as it streams, before it fills memory."""

    def __init__(self, raw, path: Path, limit: int | None):
        self.raw, self.path, self.limit, self.count = raw, path, limit, 0
        self.packed = max(path.stat().st_size, 1)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.count += len(data)
        if self.limit is not None and self.count > self.limit:
            raise TooLarge(self.path, f"unpacks to more than {self.limit / MB:g} MB; refused before "
                                         "unpacking the rest (raise the limit with --max-mb if it is real)")
        if self.count > RATIO_GRACE and self.count > MAX_RATIO * self.packed:
            raise SourceError(self.path, f"unpacks to more than {MAX_RATIO} times its size (a compression "
                                         "bomb?); refused")
        buffer[:len(data)] = data
        return len(data)

    def close(self):
        self.raw.close()
        super().close()


def open_binary(path: Path, limit: int | None = None):
    """A binary file object, decompressing .gz, .bz2 and .xz on the fly.
    A compressed file is refused as soon as it unpacks to more than `limit`
    bytes, or more than MAX_RATIO times its own size: counted as it streams,
    so no more than that is ever held. (The size a .gz declares in its
    trailer is not used: a damaged file declares nonsense, and it is
    counted modulo 4 GiB.)"""
    path = Path(path)
    opener = COMPRESSED.get(path.suffix.lower())
    if not opener:
        return open(path, "rb")
    return io.BufferedReader(Inflated(opener(path, "rb"), path, limit), 256 * 1024)


def check_zip(path: Path, data: bytes | None, limit: int, kind: str = "zip archive") -> None:
    """Refuse a zip (an EPUB) whose members declare more than `limit` bytes
    in all, or one that packs more than MAX_RATIO to one, before anything
    is unpacked. Python's zipfile never gives more than a member declares."""
    try:
        with zipfile.ZipFile(io.BytesIO(data) if data is not None else path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise SourceError(path, f"is not a readable {kind} ({e}): truncated or damaged?") from e
    total = sum(m.file_size for m in members)
    if total > limit:
        raise SourceError(path, f"unpacks to {total / MB:.0f} MB, over the {limit / MB:g} MB limit; not unpacked "
                                "(raise the limit with --max-mb if it is real)")
    for m in members:
        if m.file_size > RATIO_GRACE and m.file_size > MAX_RATIO * max(m.compress_size, 1):
            raise SourceError(path, f"{m.filename} unpacks to {m.file_size / MB:.0f} MB from "
                                    f"{m.compress_size / 1024:.0f} KB (a compression bomb?); not unpacked")


def read_bytes(path: Path, max_mb: float = DEFAULT_MAX_MB) -> bytes:
    """The (decompressed) bytes of one document, refusing empty and huge files."""
    limit = int(max_mb * MB)
    try:
        with open_binary(path, limit + 1) as f:
            data = _read_at_most(f, limit + 1)
    except TooLarge:
        raise _too_large(path, max_mb) from None
    except (OSError, EOFError, lzma.LZMAError) as e:  # gzip/bz2 errors are OSErrors
        raise SourceError(path, f"cannot be read: {e} (truncated or damaged?)") from e
    if len(data) > limit:
        raise _too_large(path, max_mb)
    if not data.strip():
        raise SourceError(path, "is empty")
    return data


def _read_at_most(f, size: int) -> bytes:
    """Up to `size` bytes, read a megabyte at a time (f.read(size) would
    reserve all of `size` at once, however small the file)."""
    chunks, got = [], 0
    while got < size and (chunk := f.read(min(MB, size - got))):
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _too_large(path: Path, max_mb: float) -> SourceError:
    return SourceError(path, f"is over the {max_mb:g} MB limit for one document; split it, or raise the limit "
                             f"(--max-mb)")


def looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with a byte-order mark
        return False
    if b"\x00" in head:
        return True
    # Control characters other than tab, newline, form feed and carriage return.
    controls = len(head) - len(head.translate(None, BINARY_CONTROLS))
    return controls > len(head) * 0.05


BINARY_CONTROLS = bytes(b for b in range(32) if b not in (9, 10, 12, 13))


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
                text, encoding = guess_encoding(data, path)
                warnings.append(f"is not UTF-8; read it as {encoding} (check accented letters)")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if not text.strip():
        raise SourceError(path, "has no text")
    return text, warnings


def guess_encoding(data: bytes, path: Path) -> tuple[str, str]:
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
