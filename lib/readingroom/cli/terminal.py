"""What the command prints goes through terminal_safe: corpus text, file
names, feed titles and model output are untrusted, and an ESC or OSC
sequence among them must never reach the terminal as a command (moving the
cursor to overwrite what was printed, setting the window's title, writing
the clipboard).

The guard sits on the streams themselves (stdout and stderr), so every
print point is covered, click.echo, print and the progress bars alike. The
one kind of sequence let through is the bold/dim/reset styling click.style
gives the command's own headings.
"""
from __future__ import annotations

import io
import re
import sys

from readingroom.corpus.textio import terminal_safe

# click.style(bold=True) / (dim=True) and their resets: nothing else.
OWN_STYLES = re.compile(r"\x1b\[(?:0|1|2|22)m")
_PLACEHOLDER = "\ue000"  # private use: stands in for a kept style while the rest is stripped


def safe_for_terminal(text: str) -> str:
    styles = OWN_STYLES.findall(text)
    if not styles:
        return terminal_safe(text)
    kept = iter(styles)
    cleaned = terminal_safe(OWN_STYLES.sub(_PLACEHOLDER, text.replace(_PLACEHOLDER, "")))
    return re.sub(_PLACEHOLDER, lambda _: next(kept), cleaned)


class TerminalSafeStream(io.TextIOBase):
    """A text stream that strips control characters from what is written
    to the stream it wraps (everything else is the wrapped stream's)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(safe_for_terminal(text))
        return len(text)

    def __getattr__(self, name):  # encoding, buffer, isatty, fileno, flush ...
        return getattr(self._stream, name)

    def flush(self):
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self):
        return self._stream.encoding

    @property
    def errors(self):
        return self._stream.errors

    def writable(self) -> bool:
        return True


def guard_terminal() -> None:
    """Put the guard on sys.stdout and sys.stderr (once)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, TerminalSafeStream):
            setattr(sys, name, TerminalSafeStream(stream))
