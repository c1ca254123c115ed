"""Looking around a library: what is in it, when, and how words are used.

Small functions that answer one question each and return a pandas DataFrame
(or, for the plot_ helpers, a matplotlib Figure), so a notebook cell is one
call and a sentence about what it shows.

Counts are taken over documents.text, never over passages: passages overlap
(each repeats the end of the one before it), so counting them would count
some words twice. A word is a run of letters and digits, with inner
apostrophes and hyphens ("don't", "self-management" are one word each). A
term matches whole words, case-insensitively: "union" counts "Union" and
"union's" but not "reunion" or "unions"; a trailing "*" stands for any word
ending ("strike*" counts "strike", "strikes", "striker"); a phrase ("mutual
aid") matches its words with any whitespace between them.

Terms come from users and text from the corpus, so neither is ever written
into SQL: terms become escaped regular expressions passed as parameters, and
kwic_html() escapes everything it renders.
"""
from __future__ import annotations

import html
import re
import textwrap
from dataclasses import dataclass

import pandas as pd

from readingroom.library.store import Library
from readingroom.viz import new_figure

# RE2 (DuckDB's regex engine) has no lookaround and its \b and \w are ASCII
# only, so word characters are spelt out as Unicode classes: letters, digits
# and underscore, which is what Python's \w means for str patterns.
WORD_CHAR = r"[\pL\pN_]"
NON_WORD_CHAR = r"[^\pL\pN_]"
WORD_RE2 = WORD_CHAR + r"+(?:['’\-]" + WORD_CHAR + r"+)*"
# Between the words of a phrase: any run of spaces, tabs, line breaks or
# no-break spaces (written out because RE2's \s is ASCII only).
PHRASE_GAP = "[ \\t\\n\\r\\f\u00a0]+"

# SQL for the words of a document's text, and for the occurrences of a term
# in it given Term.re2_counting as the parameter. (A subquery rather than
# list_filter: DuckDB's lambda syntax differs between versions.)
WORDS_SQL = "len(regexp_extract_all({text}, ?))"
OCCURRENCES_SQL = ("(SELECT count(*) FROM unnest(regexp_extract_all({text}, ?, 1)) AS m(tail) "
                   "WHERE tail = '')")

# What documents can be grouped by (the `by` of overview and term_frequency).
GROUPINGS = ("year", "decade", "author", "source", "language")


# --- terms -------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """A search term, compiled for DuckDB (counting) and Python (finding)."""

    text: str

    def __post_init__(self):
        words = self.text.split()
        if not words:
            raise ValueError("a term needs at least one word")
        stem = words[-1].removesuffix("*")
        if any("*" in w for w in words[:-1]) or "*" in stem or not stem:
            raise ValueError(f"{self.text!r}: '*' may only end the last word of a term, once")

    @property
    def _words(self) -> list[str]:
        return self.text.split()

    @property
    def _wildcard(self) -> bool:
        return self._words[-1].endswith("*")

    def _core(self, escape, word_tail: str) -> str:
        words = self._words
        if self._wildcard:
            words = words[:-1] + [words[-1].removesuffix("*")]
        core = PHRASE_GAP.join(escape(w) for w in words)
        return core + (word_tail if self._wildcard else "")

    @property
    def re2_core(self) -> str:
        """The term alone, case-insensitive, without word boundaries."""
        return "(?i)" + self._core(_re2_escape, WORD_CHAR + "*")

    @property
    def re2_counting(self) -> str:
        """A pattern whose matches, taken with their group 1, count the term.

        It consumes the non-word character before the term (RE2 cannot look
        behind) and, optionally, one word character after it (it cannot look
        ahead either): group 1 is empty exactly when the term ends a word.
        The character after the term is not consumed when it is a separator,
        so "union union" (one space between) still yields two matches.
        """
        core = self._core(_re2_escape, WORD_CHAR + "*")
        return f"(?i)(?:^|{NON_WORD_CHAR}){core}({WORD_CHAR}?)"

    @property
    def python(self) -> re.Pattern:
        """The same term for Python's re, with lookarounds for the boundaries."""
        core = self._core(re.escape, r"\w*")
        return re.compile(rf"(?<!\w){core}(?!\w)", re.IGNORECASE)


def _re2_escape(word: str) -> str:
    # Every ASCII punctuation character is escaped (RE2 accepts a backslash
    # before any of them); letters, digits and non-ASCII characters are
    # literals in RE2.
    return "".join("\\" + c if c.isascii() and not c.isalnum() and c != "_" else c for c in word)


# --- what is in the library --------------------------------------------------
def _group_sql(by: str) -> tuple[str, str, str]:
    """(expression, extra FROM clause, condition) for grouping documents d."""
    if by == "year":
        return "d.year", "", "d.year IS NOT NULL"
    if by == "decade":
        return "d.year // 10 * 10", "", "d.year IS NOT NULL"
    if by == "author":
        # A document with several authors counts once for each of them.
        return ("a.author", ", unnest(CASE WHEN len(d.authors) = 0 THEN ['unknown'] "
                "ELSE d.authors END) AS a(author)", "true")
    if by == "source":
        return "d.source", "", "true"
    if by == "language":
        return "coalesce(d.language, 'unknown')", "", "true"
    raise ValueError(f"cannot group by {by!r}; choose one of {', '.join(GROUPINGS)}")


def overview(lib: Library, by: str = "source") -> pd.DataFrame:
    """Documents, passages and words by source (or by "language" or "author"),
    largest first, with the years each group spans."""
    expression, unnest, condition = _group_sql(by)
    return lib.con.execute(
        f"""
        SELECT {expression} AS {by}, count(*) AS documents, sum(d.n_passages) AS passages,
               sum({WORDS_SQL.format(text="d.text")}) AS words,
               min(d.year) AS first_year, max(d.year) AS last_year
        FROM documents d{unnest}
        WHERE {condition}
        GROUP BY 1 ORDER BY documents DESC, words DESC, 1
        """,
        [WORD_RE2],
    ).df().astype({"documents": "int64", "passages": "int64", "words": "int64",
                   "first_year": "Int64", "last_year": "Int64"})


def documents_per_year(lib: Library, source: str | None = None,
                       every_year: bool = False) -> pd.DataFrame:
    """Year, documents and words, for the years that have documents (with
    `every_year`, also the years between them that have none, as 0)."""
    table = lib.con.execute(
        f"""
        SELECT year, count(*) AS documents, sum({WORDS_SQL.format(text="text")}) AS words
        FROM documents
        WHERE year IS NOT NULL AND (CAST(? AS VARCHAR) IS NULL OR source = ?)
        GROUP BY year ORDER BY year
        """,
        [WORD_RE2, source, source],
    ).df().astype({"year": "int64", "documents": "int64", "words": "int64"})
    if every_year and not table.empty:
        years = range(table["year"].min(), table["year"].max() + 1)
        table = table.set_index("year").reindex(years, fill_value=0).rename_axis("year").reset_index()
    return table


def find_documents(lib: Library, text: str) -> pd.DataFrame:
    """Documents whose title, author or key contains `text` (any case)."""
    return lib.con.execute(
        """
        SELECT doc_id, source, key, title, authors, year, n_passages
        FROM documents
        WHERE contains(lower(title), lower(?)) OR contains(lower(key), lower(?))
           OR contains(lower(array_to_string(authors, chr(10))), lower(?))
        ORDER BY source, year NULLS LAST, key
        """,
        [text, text, text],
    ).df()


def sections_of(lib: Library, doc_id: str) -> pd.DataFrame:
    """The outline of a document: each section with its anchor and passages."""
    return lib.con.execute(
        """
        SELECT array_to_string(section, ' › ') AS section, anchor,
               count(*) AS passages, min(ordinal) AS first_passage
        FROM passages WHERE doc_id = ?
        GROUP BY section, anchor ORDER BY first_passage
        """,
        [doc_id],
    ).df()


def passages_of(lib: Library, doc_id: str, section: str | None = None,
                limit: int | None = None) -> pd.DataFrame:
    """A document's passages in order: citation, anchor and text. `section`
    keeps those under a heading containing it (any case)."""
    return lib.con.execute(
        """
        SELECT ordinal, array_to_string(section, ' › ') AS section, anchor, citation, text,
               char_start, char_end
        FROM passages
        WHERE doc_id = ?
          AND (CAST(? AS VARCHAR) IS NULL
               OR contains(lower(array_to_string(section, ' › ')), lower(?)))
        ORDER BY ordinal
        LIMIT ?
        """,
        [doc_id, section, section, limit],
    ).df()


def format_passages(passages: pd.DataFrame, width: int = 100) -> str:
    """Passages from passages_of() as plain text to print: for each, its
    number, citation and anchor, then its text wrapped to `width`."""
    return "\n\n".join(
        f"[{p.ordinal}] {p.citation}" + (f"  #{p.anchor}" if p.anchor else "") + "\n"
        + "\n".join(textwrap.fill(paragraph, width) for paragraph in p.text.split("\n\n"))
        for p in passages.itertuples()
    )


# --- words over time ---------------------------------------------------------
def term_frequency(lib: Library, terms: list[str], by: str = "year",
                   source: str | None = None, per: int = 10_000) -> pd.DataFrame:
    """How often each term occurs, per `per` words, in each year (or decade,
    author, source).

    One row per group and term: documents and words in the group, the
    term's occurrences, and `rate` = occurrences / words * per. Groups where
    a term never occurs are there with 0, so lines over time have no holes
    that are not gaps in the corpus itself. Grouping by year or decade leaves
    out documents without a year.
    """
    if isinstance(terms, str):
        terms = [terms]  # one term, not its letters
    compiled = [Term(t) for t in terms]
    expression, unnest, condition = _group_sql(by)
    # One query for all terms; the SQL holds one placeholder per term (the
    # count of terms is all that shapes it), each pattern goes in as a
    # parameter, which DuckDB compiles once instead of once per document.
    counts = ",\n".join(
        f"sum({OCCURRENCES_SQL.format(text='d.text')}) AS t{i}" for i in range(len(compiled))
    )
    table = lib.con.execute(
        f"""
        SELECT {expression} AS grp, count(*) AS documents,
               sum({WORDS_SQL.format(text="d.text")}) AS words,
               {counts}
        FROM documents d{unnest}
        WHERE {condition} AND (CAST(? AS VARCHAR) IS NULL OR d.source = ?)
        GROUP BY 1 ORDER BY 1
        """,
        [WORD_RE2, *(t.re2_counting for t in compiled), source, source],
    ).df()
    long = table.melt(id_vars=["grp", "documents", "words"],
                      value_vars=[f"t{i}" for i in range(len(compiled))],
                      var_name="term", value_name="occurrences")
    long["term"] = long["term"].map({f"t{i}": t for i, t in enumerate(terms)})
    long["term"] = pd.Categorical(long["term"], categories=list(dict.fromkeys(terms)), ordered=True)
    long = long.rename(columns={"grp": by}).sort_values([by, "term"], kind="stable")
    long = long.astype({"documents": "int64", "words": "int64", "occurrences": "int64"})
    long["rate"] = (long["occurrences"] / long["words"].where(long["words"] > 0) * per).fillna(0.0)
    long.attrs["per"] = per
    return long[[by, "term", "documents", "words", "occurrences", "rate"]].reset_index(drop=True)


def documents_using(lib: Library, term: str, source: str | None = None,
                    limit: int | None = 10, per: int = 10_000) -> pd.DataFrame:
    """The documents that use `term` most: where to read about it. Each with
    its occurrences, words and rate per `per` words, most occurrences first."""
    table = lib.con.execute(
        f"""
        WITH counted AS (
            SELECT doc_id, source, key, title, year,
                   {OCCURRENCES_SQL.format(text="text")} AS occurrences,
                   {WORDS_SQL.format(text="text")} AS words
            FROM documents
            WHERE (CAST(? AS VARCHAR) IS NULL OR source = ?)
        )
        SELECT * FROM counted WHERE occurrences > 0
        ORDER BY occurrences DESC, source, year NULLS LAST, key
        LIMIT ?
        """,
        [Term(term).re2_counting, WORD_RE2, source, source, limit],
    ).df().astype({"year": "Int64", "occurrences": "int64", "words": "int64"})
    table["rate"] = table["occurrences"] / table["words"] * per
    return table


# --- keyword in context ------------------------------------------------------
def kwic(lib: Library, term: str, width: int = 60, limit: int = 20,
         source: str | None = None, per_document: int | None = None) -> pd.DataFrame:
    """Occurrences of `term` with `width` characters either side and the
    citation of the passage each one is in.

    Matches are found in documents.text, so a match that lies in two
    overlapping passages is shown once, cited by the first passage that holds
    all of it. Documents come in order of source, year and key; at most
    `per_document` matches are taken from each (all when None).
    """
    compiled = Term(term)
    rows = []
    # DuckDB picks the documents that contain the term at all; Python then
    # finds the exact word-bounded positions, one document at a time, and
    # stops as soon as there are `limit` of them.
    cursor = lib.con.cursor()
    try:
        cursor.execute(
            """
            SELECT doc_id, source, title, year, text FROM documents
            WHERE regexp_matches(text, ?) AND (CAST(? AS VARCHAR) IS NULL OR source = ?)
            ORDER BY source, year NULLS LAST, key
            """,
            [compiled.re2_core, source, source],
        )
        while len(rows) < limit and (doc := cursor.fetchone()) is not None:
            doc_id, doc_source, title, year, text = doc
            matches = [m.span() for m in compiled.python.finditer(text)]
            matches = matches[:per_document] if per_document else matches
            matches = matches[: limit - len(rows)]
            if not matches:
                continue
            passages = lib.con.execute(
                "SELECT char_start, char_end, citation, anchor FROM passages "
                "WHERE doc_id = ? ORDER BY ordinal",
                [doc_id],
            ).fetchall()
            for start, end in matches:
                citation, anchor = _passage_holding(passages, start, end)
                rows.append({
                    "left": _one_line(text[max(0, start - width):start]),
                    "match": text[start:end],
                    "right": _one_line(text[end:end + width]),
                    "citation": citation,
                    "anchor": anchor,
                    "title": title,
                    "year": year,
                    "source": doc_source,
                    "doc_id": doc_id,
                    "position": start,
                })
    finally:
        cursor.close()
    columns = ["left", "match", "right", "citation", "anchor", "title", "year", "source",
               "doc_id", "position"]
    return pd.DataFrame(rows, columns=columns).astype({"year": "Int64", "position": "int64"})


def _passage_holding(passages, start: int, end: int) -> tuple[str | None, str | None]:
    """Citation and anchor of the first passage that holds [start, end), else
    of the first that holds its start (a phrase across a section break)."""
    for p_start, p_end, citation, anchor in passages:
        if p_start <= start and end <= p_end:
            return citation, anchor
    for p_start, p_end, citation, anchor in passages:
        if p_start <= start < p_end:
            return citation, anchor
    return None, None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def kwic_html(hits: pd.DataFrame) -> str:
    """A KWIC table as HTML: context aligned on the match, citation beside it.
    Corpus text is escaped, so nothing in a document becomes markup."""
    e = html.escape
    rows = "\n".join(
        "<tr>"
        f"<td style='text-align:right;white-space:nowrap'>{e(r.left)}</td>"
        f"<td style='text-align:center;white-space:nowrap'><b>{e(r.match)}</b></td>"
        f"<td style='text-align:left;white-space:nowrap'>{e(r.right)}</td>"
        f"<td style='text-align:left'><small>{e(r.citation or '')}</small></td>"
        "</tr>"
        for r in hits.itertuples()
    )
    return (
        "<table class='kwic'><thead><tr><th style='text-align:right'>before</th><th>match</th>"
        "<th style='text-align:left'>after</th><th style='text-align:left'>cited as</th></tr>"
        f"</thead><tbody>\n{rows}\n</tbody></table>"
    )


# --- plots -------------------------------------------------------------------
def plot_counts(table: pd.DataFrame, column: str = "documents", top: int = 15,
                title: str | None = None):
    """Horizontal bars of `column` for the first `top` rows of an overview()
    table (the first column names the bars)."""
    label = table.columns[0]
    shown = table.head(top).iloc[::-1]  # largest at the top
    fig, (ax,) = new_figure(8, 0.8 + 0.32 * len(shown))
    bars = ax.barh(shown[label].astype(str), shown[column], color="#4c72b0")
    ax.bar_label(bars, labels=[f"{v:,}" for v in shown[column]], padding=3, fontsize=8)
    ax.set_xlabel(column)
    ax.set_ylabel(label)
    ax.margins(x=0.12)
    ax.set_title(title or f"{column.capitalize()} by {label}"
                 + (f" (top {top} of {len(table)})" if len(table) > top else ""))
    return fig


def plot_timeline(per_year: pd.DataFrame, title: str = "Documents and words per year"):
    """Two bar charts over the years of a documents_per_year() table:
    documents, and words (how long the year's documents are)."""
    fig, (top, bottom) = new_figure(10, 5, rows=2, sharex=True, height_ratios=[1, 2])
    # Bars a full year wide, without edges: thinner ones alias into stripes.
    top.bar(per_year["year"], per_year["documents"], width=1.0, linewidth=0, color="#4c72b0")
    top.set_ylabel("documents")
    top.yaxis.get_major_locator().set_params(integer=True)
    bottom.bar(per_year["year"], per_year["words"] / 1000, width=1.0, linewidth=0, color="#dd8452")
    bottom.set_ylabel("words (thousands)")
    bottom.set_xlabel("year")
    fig.suptitle(title)
    return fig


def rolling_rate(rows: pd.DataFrame, window: int, step: int = 1, per: int = 10_000) -> pd.Series:
    """The rate over `window` consecutive groups (years, or decades with
    step=10) centred on each, from the occurrences and words of one term's
    rows of a term_frequency() table indexed by year: a long document weighs
    more than a short one, and a year without documents adds nothing."""
    every = range(rows.index.min(), rows.index.max() + step, step)
    sums = rows[["occurrences", "words"]].reindex(every).fillna(0)
    rolled = sums.rolling(window, center=True, min_periods=1).sum()
    return rolled["occurrences"] / rolled["words"].where(rolled["words"] > 0) * per


def plot_term_frequency(freq: pd.DataFrame, window: int = 5, panels: bool = False,
                        title: str | None = None):
    """Each term's rate over the years (or decades) of a term_frequency()
    table: one line per term, or with `panels` one chart per term, each on
    its own scale (a rare word is not flattened by a common one).

    With `window` > 1 the line is the rolling_rate() over `window` years;
    the rate of each single year is drawn as faint dots behind it.
    """
    by = freq.columns[0]
    if by not in ("year", "decade"):
        raise ValueError(f"plot_term_frequency draws rates over time, not by {by}")
    step = 10 if by == "decade" else 1
    per = freq.attrs.get("per", 10_000)
    terms = list(freq["term"].drop_duplicates())
    if panels:
        fig, axes = new_figure(10, 0.6 + 1.5 * len(terms), rows=len(terms), sharex=True)
    else:
        fig, (ax,) = new_figure(10, 4.5)
        axes = [ax] * len(terms)
    colours = [f"C{i}" for i in range(len(terms))]
    for ax, term, colour in zip(axes, terms, colours):
        rows = freq[freq["term"] == term].set_index(by)
        if window > 1:
            ax.plot(rows.index, rows["rate"], linestyle="none", marker=".", markersize=4,
                    color=colour, alpha=0.3)
            rate = rolling_rate(rows, window, step, per)
            ax.plot(rate.index, rate, color=colour, linewidth=1.8, label=str(term))
        else:
            ax.plot(rows.index, rows["rate"], color=colour, linewidth=1.5, label=str(term))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if panels:
            ax.set_title(str(term), loc="left", fontsize=10)
    unit = "decade" if by == "decade" else "year"
    smoothing = f"{window}-{unit} rolling rate, dots: single {unit}s" if window > 1 else f"rate per {unit}"
    fig.suptitle(title or f"Term frequency by {by} ({smoothing})")
    axes[-1].set_xlabel(by)
    if panels:
        fig.supylabel(f"occurrences per {per:,} words", fontsize=10)
    else:
        axes[0].set_ylabel(f"occurrences per {per:,} words")
        axes[0].legend(title="term", loc="upper left", ncols=2, fontsize=9)
    return fig
