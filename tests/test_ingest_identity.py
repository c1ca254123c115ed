"""The faster ingestion stores exactly what the plain one stored.

Each shortcut (token counts and control characters checked with
bytes.translate, the FAQ's wrapped headings joined line by line, sentence
ends found with fewer checks) is compared with the plain definition it
replaced, written out here, on texts made to break it. And the whole path is
compared with what the code before the shortcuts stored: digests of every
column of documents and passages, taken with that code (main at 8991784) on
the fixtures and on An Anarchist FAQ. A change that is meant to change what
is stored (a new splitter version) changes these digests on purpose:
`python bench/ingest.py --identity` then shows, against another checkout,
what differs.
"""
from __future__ import annotations

import hashlib
import json
import random
import re

import pytest

from readingroom import ingest, ingest_paths, open_library
from readingroom.corpus.passages import count_tokens
from readingroom.corpus.sources.anarchist_faq import WRAPPED_HEADING, unwrap_headings
from readingroom.corpus.textio import CONTROLS, strip_controls
from readingroom.text import ABBREVIATIONS, SENTENCE_END_RE, sentence_spans

# The definitions the fast paths replaced.
PUNCTUATION_RE = re.compile(r"[.,;:!?\"'()\[\]\-\u2013\u2014\u201c\u201d\u2018\u2019\u00ab\u00bb\u2026/]")


def plain_count_tokens(text: str) -> int:
    if "  " in text or "\n" in text or "\t" in text or text[:1].isspace() or text[-1:].isspace():
        words = len(text.split())
    else:
        words = text.count(" ") + 1 if text else 0
    return words + len(PUNCTUATION_RE.findall(text))


def plain_strip_controls(text: str) -> str:
    return CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n")) if text else text


def plain_unwrap_headings(text: str) -> str:
    previous = None
    while previous != text:
        previous, text = text, WRAPPED_HEADING.sub(r"\1 \2", text)
    return text


def plain_sentence_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in SENTENCE_END_RE.finditer(text):
        word = text[max(start, m.start() - 12): m.start()].rsplit(None, 1)[-1:] or [""]
        word = word[0].lstrip("([\"'“‘").lower()
        if text[m.start()] == "." and (word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
            continue
        spans.append((start, m.end() - (len(m.group()) - len(m.group().rstrip()))))
        start = m.end()
    if start < len(text) and len(text.rstrip()) > start:
        spans.append((start, len(text.rstrip())))
    return spans


def made_up(pieces: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 14))) for _ in range(n)]


def test_token_counts_and_stripped_controls_are_the_plain_definitions(fixtures):
    # Every kind of space, mark, control and script the fast paths tell apart,
    # a lone surrogate (JSON can carry one), and the fixtures' real text.
    pieces = list("ab .,;:!?\"'()[]-/\t\n\r\x00\x1b\x7f\x85\x9f\xa0\u2013\u2014\u201c\u201d\u2018\u2019\u00ab\u00bb"
                  "\u2026\u2028\u3000é日\ud800") + ["  ", "word"]
    texts = made_up(pieces, 20_000, seed=0)
    texts += [p for f in (fixtures / "text").glob("*.txt") for p in f.read_text(encoding="utf-8").split("\n\n")]
    assert [count_tokens(t) for t in texts] == [plain_count_tokens(t) for t in texts]
    assert [strip_controls(t) for t in texts] == [plain_strip_controls(t) for t in texts]


def test_wrapped_headings_are_joined_as_the_repeated_substitution_joined_them():
    pieces = ["#", "##", "#######", "# ", "a", "?", " ", "\n", "\n", "\n\n", "# x", "b?", "x "]
    texts = made_up(pieces, 20_000, seed=1)
    texts.append("# What is\nanarchism\nreally\n\n## Is it?\nno\n# Done\n")
    assert [unwrap_headings(t) for t in texts] == [plain_unwrap_headings(t) for t in texts]


def test_sentence_ends_are_those_of_the_plain_splitter():
    pieces = ["Dr", "Mr", "e.g", ".", "!", "?", "…", " ", "\u00a0", "\n", "A", "a", "1", "\"", "”", "(", "J", "x",
              "»", "¿", "日"]
    texts = made_up(pieces, 20_000, seed=2)
    assert [sentence_spans(t) for t in texts] == [plain_sentence_spans(t) for t in texts]


# --- what is stored -----------------------------------------------------------------
DOCUMENT_COLUMNS = ("doc_id, source, key, location, url, title, authors, year, date, language, content_sha256, "
                    "fingerprint, n_chars, n_passages, n_tokens, text, metadata")
PASSAGE_COLUMNS = ("passage_id, doc_id, ordinal, section, anchor, char_start, char_end, page_start, page_end, text, "
                   "n_tokens, citation, text_sha256")


def stored_digests(lib) -> dict[str, tuple[int, str]]:
    """(rows, sha256 of every row) of documents and passages. Locations are
    paths on this machine: only their file names count."""
    digests = {}
    for table, columns, key in (("documents", DOCUMENT_COLUMNS, "doc_id"), ("passages", PASSAGE_COLUMNS, "passage_id")):
        columns = columns.replace("location", "regexp_extract(location, '[^/]*$') AS location")
        rows = lib.con.execute(f"SELECT {columns} FROM {table} ORDER BY {key}").fetchall()
        digests[table] = (len(rows), hashlib.sha256(json.dumps(rows, default=str, ensure_ascii=False).encode())
                          .hexdigest())
    return digests


# Taken with main at 8991784, before the fast paths.
FIXTURE_DIGESTS = {
    "documents": (14, "7af5b4b796ba29aae33934761193986846ff3533cf0fb07eea94a675a3eeff81"),
    "passages": (27, "8f9628fd9a3807aa4f00f5bfb94571f17aef25456c3109847124f606b2b5f4f6"),
}
FAQ_DIGESTS = {
    "documents": (132, "70a7a9b5e07cb52d9985ff851d7a1220ca3d74a7fde3fe5a30a384a4e3ff4e6b"),
    "passages": (14859, "46711fd9672f7df9e2cb9746eca7e84a65fd91cc7f8da55d0cf4e63c184dfb7e"),
}


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_the_fixtures_are_stored_as_before(tmp_path, fixtures, workers):
    with open_library(tmp_path / "fixtures.duckdb") as lib:
        for name in ("text", "markdown", "html", "mediawiki", "articles", "epub", "pdf"):
            ingest_paths(lib, [fixtures / name], progress=False, workers=workers)
        assert stored_digests(lib) == FIXTURE_DIGESTS


@pytest.mark.slow  # 11 MB of text: a few seconds
def test_the_anarchist_faq_is_stored_as_before(tmp_path):
    from readingroom.corpus import corpora

    corpus = corpora.get("anarchist-faq")
    try:
        folder = corpora.fetch(corpus, download=False)
    except corpora.CorpusError as e:
        pytest.fail(f"{e} (the test set-up, `bash setup.sh test`, fetches it)")
    with open_library(tmp_path / "faq.duckdb") as lib:
        report = ingest(lib, corpora.read(corpus, folder), progress=False)
        assert report.added == FAQ_DIGESTS["documents"][0] and not report.errors
        assert stored_digests(lib) == FAQ_DIGESTS
