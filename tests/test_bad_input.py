"""Bad input, generated: every reader (text, Markdown, HTML, EPUB, PDF,
MediaWiki, JSONL/CSV articles, feeds) and the answer checker's pure
functions, given random bytes, truncated files, deep nesting and huge lines.

The property: a reader yields Documents and Problems, or raises a
SourceError that names the file; never any other exception, and never
more than PER_FILE_S seconds on one file (a hang is a failure, by alarm).
The checker's functions return, whatever text they are given.

Few examples by default (the "ci" profile: the suite must stay cheap);
HYPOTHESIS_PROFILE=thorough runs many more."""
from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readingroom.corpus.document import Document
from readingroom.corpus.sources import Problem, ReadOptions, reader_for
from readingroom.corpus.textio import SourceError, logical_suffix

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "fixtures"
PER_FILE_S = 30  # generous: CI machines are shared; a real hang never ends
settings.register_profile("ci", max_examples=6, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("thorough", max_examples=300, deadline=PER_FILE_S * 1000,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# One good file of each kind: what truncation and corruption start from.
SAMPLES = {
    ".txt": FIXTURES / "text/manifesto-excerpt.txt",
    ".md": FIXTURES / "markdown/reform-or-revolution.md",
    ".html": FIXTURES / "html/manifesto-ch01.htm",
    ".epub": FIXTURES / "epub/conquest-of-bread.epub",
    ".pdf": FIXTURES / "pdf/reform-or-revolution.pdf",
    ".xml": FIXTURES / "mediawiki/prolewiki-sample.xml",
    ".jsonl": FIXTURES / "articles/articles.jsonl",
    ".csv": FIXTURES / "articles/articles.csv",
}
FEEDS = {
    ".rss": FIXTURES / "news/harbour-gazette.rss",
    ".atom": FIXTURES / "news/daily-ledger.atom",
    ".jsonl": FIXTURES / "news/wire-export.jsonl",
}
DEPTH = 50_000
NESTED = {
    ".txt": b"(" * DEPTH,
    ".md": b"> " * DEPTH + b"text\n" + b"[" * DEPTH,
    ".html": b"<div>" * DEPTH + b"text",
    ".epub": b"PK\x03\x04" * DEPTH,
    ".pdf": b"%PDF-1.4\n1 0 obj\n" + b"<<" * DEPTH + b"\nendobj\n%%EOF",
    ".xml": b"<mediawiki>" + b"<a>" * DEPTH,
    ".jsonl": b"[" * DEPTH + b"\n" + b'{"body": ' + b"[" * DEPTH + b"}\n",
    ".csv": b"title,body\n" + b'"' * DEPTH,
    ".rss": b"<rss><channel>" + b"<item>" * DEPTH,
    ".atom": b'<feed xmlns="http://www.w3.org/2005/Atom">' + b"<entry><content type=\"xhtml\">" + b"<div>" * DEPTH,
}
HUGE_LINE = b"word " * 600_000  # 3 MB without a line break


@contextlib.contextmanager
def time_limit(seconds: int, what: str):
    def expired(signum, frame):
        raise TimeoutError(f"{what} took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def read_document_file(data: bytes, suffix: str, max_mb: float = 1.0) -> None:
    """Read bytes as a file with `suffix`; fail on anything but the property."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(data)
        reader = reader_for(logical_suffix(path))
        try:
            with time_limit(PER_FILE_S, str(path)):
                for item in reader(path, path.name, ReadOptions(max_mb=max_mb)):
                    assert isinstance(item, (Document, Problem)), item
                    if isinstance(item, Problem):
                        assert str(path) in item.location, item
        except SourceError as e:
            assert str(path) in e.location, e
            assert e.problem.strip()


def read_feed_file(data: bytes, suffix: str) -> None:
    from readingroom.news.feeds import read_file
    from readingroom.news.items import NewsItem

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"feed{suffix}"
        path.write_bytes(data)
        try:
            with time_limit(PER_FILE_S, str(path)):
                for item in read_file(path, max_mb=1.0):
                    assert isinstance(item, (NewsItem, Problem)), item
        except SourceError as e:
            assert str(path) in e.location, e


def truncated(sample: Path):
    data = sample.read_bytes()
    return st.integers(min_value=0, max_value=len(data) - 1).map(lambda n: data[:n])


def corrupted(sample: Path):
    """The sample with a few bytes overwritten at random places."""
    data = sample.read_bytes()
    edits = st.lists(st.tuples(st.integers(0, len(data) - 1), st.binary(min_size=1, max_size=8)), min_size=1,
                     max_size=6)

    def apply(changes):
        out = bytearray(data)
        for at, new in changes:
            out[at:at + len(new)] = new
        return bytes(out)
    return edits.map(apply)


def bad_bytes(sample: Path):
    return st.one_of(st.binary(max_size=2048), truncated(sample), corrupted(sample))


# --- document readers -----------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", sorted(SAMPLES))
def test_a_reader_given_bad_bytes_names_the_file_and_never_crashes(suffix):
    @given(bad_bytes(SAMPLES[suffix]))
    def check(data):
        read_document_file(data, suffix)

    check()


@pytest.mark.parametrize("suffix", sorted(SAMPLES))
def test_a_reader_given_deep_nesting_or_a_huge_line_names_the_file(suffix):
    read_document_file(NESTED[suffix], suffix)
    read_document_file(HUGE_LINE, suffix)
    read_document_file(HUGE_LINE * 2, suffix, max_mb=5)


@pytest.mark.parametrize("suffix", [".txt.gz", ".md.bz2", ".xml.xz", ".jsonl.gz"])
def test_a_compressed_reader_given_bad_bytes_names_the_file(suffix):
    @given(st.binary(max_size=512))
    def check(data):
        read_document_file(data, suffix)

    check()


# --- feeds ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", sorted(FEEDS))
def test_a_feed_given_bad_bytes_names_the_file_and_never_crashes(suffix):
    @given(bad_bytes(FEEDS[suffix]))
    def check(data):
        read_feed_file(data, suffix)

    check()


@pytest.mark.parametrize("suffix", sorted(FEEDS))
def test_a_feed_given_deep_nesting_or_a_huge_line_names_the_file(suffix):
    read_feed_file(NESTED[suffix], suffix)
    read_feed_file(HUGE_LINE, suffix)


# --- the answer checker's pure functions ---------------------------------------------------------------

ANSWERISH = st.one_of(
    st.text(max_size=400),
    st.text(alphabet=st.sampled_from("[]0123456789,;- .?!\"'“”«»()abc\n"), max_size=400),
    st.just("[" * 20_000 + "1" + "]" * 20_000),
    st.just("A sentence. " * 20_000),
)


@given(ANSWERISH)
def test_the_checker_functions_return_whatever_the_text(text):
    from readingroom import text as words_module
    from readingroom.answer import check
    from readingroom.answer.check import citations, scoring
    from readingroom.answer.check import sentences as check_sentences

    with time_limit(PER_FILE_S, "the checker"):
        sentences = check.split_sentences(text)
        assert all(isinstance(s, check.Sentence) for s in sentences)
        check.cited_numbers(text)
        check.all_citation_markers(text)
        citations.strip_citations(text)
        citations.normalise_citations(text)
        citations.keep_citations(text, {1, 2})
        words = words_module.content_words(text)
        scoring.lexical_overlap(words, set(words[:5]))
        check.best_quote(text, [s.text for s in sentences][:3])
        check_sentences.join_sentences(sentences)
