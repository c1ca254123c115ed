"""Figures that outlets give differently for the same story.

A figure is a number written in digits with what it counts: "4,000
dockworkers", "3.5 mln bpd", "2 million euros", "12 percent pay rise" (for
percentages and money the counted word is followed by what it is a share or
a price of, so that "a 12 percent pay rise" and "a 6 percent rise ... offered"
are not read as one figure). Dates, times and numbers with nothing counted
after them are left out: they are too often about different things.

Within one story, when two outlets give a figure for the same thing and
share no value for it, the disagreement is flagged with each outlet's
sentence and citation. This is a heuristic that points, not a judge: the
sentences are shown so the reader can see whether the two figures are
really about the same thing (a union's count and a port authority's), and
nothing is said about which is right.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from readingroom.text import sentence_spans

_NUMBER = re.compile(r"(?<![\w.,:/-])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?![\d:/]|[.,]\d)")
_WORD = re.compile(r"%|[A-Za-z][A-Za-z'’-]*")
SCALES = {"thousand": 1e3, "million": 1e6, "mln": 1e6, "millions": 1e6, "billion": 1e9, "bln": 1e9, "bn": 1e9,
          "billions": 1e9, "trillion": 1e12}
SHARE_WORDS = {"%": "percent", "percent": "percent", "pct": "percent", "per": "percent"}
MONEY_WORDS = {"dlrs": "dollars", "dollars": "dollars", "dollar": "dollars", "euros": "euros", "euro": "euros",
               "pounds": "pounds", "cts": "cents", "cents": "cents", "yen": "yen", "marks": "marks"}
SKIPPED = {"of", "the", "its", "their", "his", "her", "our", "a", "an", "more", "than", "about", "some", "to",
           "cent", "new", "other", "extra", "additional", "local", "full-time", "registered", "in", "at"}
MONTHS = {"jan", "january", "feb", "february", "mar", "march", "apr", "april", "may", "jun", "june", "jul",
          "july", "aug", "august", "sep", "sept", "september", "oct", "october", "nov", "november", "dec",
          "december"}
TIME_WORDS = {"am", "pm", "gmt", "utc", "bst", "est", "o'clock", "h", "hrs"}
CURRENCY_SIGNS = {"$": "dollars", "€": "euros", "£": "pounds"}


@dataclass(frozen=True)
class Figure:
    value: float
    unit: str  # what is counted, e.g. "dockworker", "percent pay", "dollars barrel"
    text: str  # the figure as written, e.g. "4,000 dockworkers"
    sentence: str
    item: int  # the story's item number (1-based)
    outlet: str


def _singular(word: str) -> str:
    word = word.lower().strip("'’-")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def figures_in(text: str, item: int = 0, outlet: str = "") -> list[Figure]:
    found: list[Figure] = []
    sentences = [" ".join(p[a:b].split()) for p in re.split(r"\n\s*\n", text) for a, b in sentence_spans(p)]
    for sentence in sentences:
        for m in _NUMBER.finditer(sentence):
            before = sentence[:m.start()].rstrip()
            previous = before.rsplit(None, 1)[-1].lower().strip(".,") if before else ""
            if previous in MONTHS:
                continue  # "May 1", "Feb 26": a date
            value = float(m.group(1).replace(",", ""))
            sign = sentence[m.start() - 1] if m.start() else ""
            words = _WORD.findall(sentence[m.end():m.end() + 80])
            unit, used = _unit(words, CURRENCY_SIGNS.get(sign))
            if unit is None:
                continue
            scale = next((SCALES[w.lower()] for w in words[:1] if w.lower() in SCALES), 1.0)
            if scale == 1.0 and 1900 <= value <= 2100 and float(value).is_integer() and "." not in m.group(1):
                continue  # a year
            shown = (sign if sign in CURRENCY_SIGNS else "") + m.group(1) + " " + " ".join(words[:used])
            shown = shown.replace(" %", "%")
            found.append(Figure(value * scale, unit, shown.strip(), sentence.strip(), item, outlet))
    return found


def _unit(words: list[str], currency: str | None) -> tuple[str | None, int]:
    """(what the number counts, how many words after it were read)."""
    i = 0
    if i < len(words) and words[i].lower() in SCALES:
        i += 1
    head = currency
    if head is None and i < len(words):
        w = words[i].lower()
        if w in SHARE_WORDS:
            head = SHARE_WORDS[w]
            i += 1 + (w == "per" and i + 1 < len(words) and words[i + 1].lower() == "cent")
        elif w in MONEY_WORDS:
            head, i = MONEY_WORDS[w], i + 1
    if head is not None:
        # A share or a price of what: the next word that says ("pay", "barrel").
        for j in range(i, min(i + 3, len(words))):
            w = words[j].lower()
            if w not in SKIPPED and w not in ("a", "per"):
                return f"{head} {_singular(w)}", j + 1
        return head, i
    for j in range(i, min(i + 4, len(words))):
        w = words[j].lower()
        if w in SKIPPED:
            continue
        if w in MONTHS or w in TIME_WORDS or w == "%":
            return None, j
        return _singular(w), j + 1
    return None, i


@dataclass
class Disagreement:
    unit: str
    # outlet -> [(value as written, item number, sentence)], in item order
    reports: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)

    @property
    def items(self) -> list[int]:
        return sorted({n for reports in self.reports.values() for _, n, _ in reports})


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 0.01 * max(abs(a), abs(b))


def disagreements(texts: list[tuple[int, str, str]]) -> list[Disagreement]:
    """Figures two outlets give differently, from (item number, outlet,
    text) of one story's items."""
    by_unit: dict[str, list[Figure]] = {}
    for n, outlet, text in texts:
        for f in figures_in(text, n, outlet):
            by_unit.setdefault(f.unit, []).append(f)
    found: list[Disagreement] = []
    for unit, figures in by_unit.items():
        outlets = {}
        for f in figures:
            outlets.setdefault(f.outlet, []).append(f)
        if len(outlets) < 2:
            continue
        names = list(outlets)
        differ = any(
            not any(_same(x.value, y.value) for x in outlets[a] for y in outlets[b])
            for i, a in enumerate(names) for b in names[i + 1:])
        if differ:
            found.append(Disagreement(unit, {o: [(f.text, f.item, f.sentence) for f in fs]
                                             for o, fs in outlets.items()}))
    return found
