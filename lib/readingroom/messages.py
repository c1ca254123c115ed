"""The reader-facing strings, in the reader's language: one message
catalogue, gettext style.

Each language has a PO file, lib/readingroom/locale/<code>/LC_MESSAGES/
readingroom.po, shipped as package data and read with Babel when a
language is first asked for (no compiled .mo files to keep in step: the
same files work from an editable install and from a wheel). A message is
named by a stable key ("not-answered"), its English text lives in the
English catalogue, and its placeholders are str.format fields
("{seconds}") that every translation keeps (tests/test_messages.py checks
that every key is in every language, with the same placeholders).

    message("not-answered", "de")          # "Die Quellen der Bibliothek ..."
    message("room-full", "fr", readers=40)
    say = translator("es"); say("read-further")

A language without a catalogue, or a key a catalogue lacks, falls back to
English; a key English lacks is a programming error (KeyError).
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources
from string import Formatter

DOMAIN = "readingroom"
FALLBACK = "en"


def _locale_folder():
    return resources.files("readingroom") / "locale"


@lru_cache(maxsize=1)
def languages() -> tuple[str, ...]:
    """The language codes the catalogue has, sorted."""
    return tuple(sorted(p.name for p in _locale_folder().iterdir()
                        if p.is_dir() and (p / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()))


@lru_cache(maxsize=None)
def catalogue(language: str) -> dict[str, str]:
    """key -> text of one language's catalogue (untranslated entries left out)."""
    from babel.messages.pofile import read_po

    path = _locale_folder() / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as f:
        po = read_po(f, locale=language, domain=DOMAIN)
    return {m.id: m.string for m in po if m.id and isinstance(m.id, str) and m.string}


def language_of(language: str | None) -> str:
    """`language` when the catalogue has it ('de-AT' counts as 'de'), else English."""
    code = (language or "").replace("_", "-").split("-")[0].lower()
    return code if code in languages() else FALLBACK


def preferred_language(accept_language: str | None) -> str:
    """The catalogue's language a browser asks for first in its
    Accept-Language header ("de-CH,de;q=0.9,en;q=0.8" -> "de"); English
    when it asks for none the catalogue has."""
    ranked = []
    for position, part in enumerate((accept_language or "").split(",")):
        code, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        ranked.append((-weight, position, code.strip()))
    for weight, _, code in sorted(ranked):  # the heaviest first; q=0 means "not this one"
        if weight < 0 and code.replace("_", "-").split("-")[0].lower() in languages():
            return language_of(code)
    return FALLBACK


def message(key: str, language: str | None = None, **values) -> str:
    """The text of `key` in `language` (English when that is unknown), its
    placeholders filled from `values`."""
    language = language_of(language)
    text = catalogue(language).get(key)
    if text is None:
        text = catalogue(FALLBACK)[key]
    return text.format(**values) if values else text


def translator(language: str | None):
    """`message` with the language fixed: say = translator("de"); say("read-further")."""
    language = language_of(language)
    return lambda key, **values: message(key, language, **values)


def placeholders(text: str) -> set[str]:
    """The str.format fields of a message: "{readers} readers" -> {"readers"}."""
    return {field for _, field, _, _ in Formatter().parse(text) if field is not None}


__all__ = ["message", "translator", "languages", "catalogue", "language_of", "preferred_language", "placeholders"]
