"""The text-based readers: Markdown and article exports (plain text is in
test_ingest.py with its manifest)."""
from __future__ import annotations

from readingroom.corpus.sources import Problem, read_paths


def documents(items):
    return [i for i in items if not isinstance(i, Problem)]


def test_markdown_headings_become_the_section_path(fixtures):
    (doc,) = documents(read_paths([fixtures / "markdown" / "reform-or-revolution.md"]))
    assert doc.title == "Reform or Revolution"
    sections = [(b.section, b.anchor) for b in doc.blocks]
    assert sections[0] == (("Reform or Revolution", "Introduction"), "introduction")
    assert (("Reform or Revolution", "Part One", "The Opportunist Method"), "the-opportunist-method") in sections
    texts = [b.text for b in doc.blocks]
    # Emphasis and link syntax are gone, the link text stays; headings are not text.
    assert any("The struggle for reforms is its means; the social revolution, its goal." in t for t in texts)
    assert any("theory of Eduard Bernstein, that theories" in t for t in texts)
    assert "# not a heading: code keeps its hash" in texts
    assert "Trade unions defend the workers against capital." in texts
    assert not any(t.startswith("#") and "Introduction" in t for t in texts)


def test_jsonl_articles_with_bad_records_reported(fixtures):
    items = list(read_paths([fixtures / "articles" / "articles.jsonl"]))
    docs = documents(items)
    problems = [str(i) for i in items if isinstance(i, Problem)]
    assert [d.title for d in docs] == ["Dockers strike for the tanner", "Commune proclaimed in Paris", "Matchgirls win"]
    assert any("articles.jsonl, line 3: has no body text" in p for p in problems)
    assert any("articles.jsonl, line 4: is not valid JSON" in p for p in problems)
    dock, commune, match = docs
    assert dock.key == dock.url == "https://example.org/1889/dock-strike"
    assert (dock.date, dock.year, dock.authors) == ("1889-08-20", 1889, ["Labour Correspondent"])
    assert [b.text for b in dock.blocks][1] == "The strike committee meets daily at Wade's Arms."
    assert commune.authors == ["Foreign Desk", "Paris Correspondent"] and commune.year == 1871
    assert match.key.endswith("articles.jsonl#5")  # no URL: file and line


def test_csv_articles(fixtures):
    docs = documents(read_paths([fixtures / "articles" / "articles.csv"]))
    assert [(d.title, d.year, d.url) for d in docs] == [
        ("Eight-hour day demanded", 1886, "https://example.org/1886/may-day"),
        ("Haymarket meeting", 1886, "https://example.org/1886/haymarket"),
    ]
    assert len(docs[0].blocks) == 2


def test_every_fixture_format_goes_through_one_ingest(library, fixtures):
    from readingroom import ingest_paths

    # news/ holds feeds, read by readingroom.news, and benchmark/ questions, not documents
    report = ingest_paths(library, [p for p in fixtures.iterdir() if p.name not in ("news", "benchmark")],
                          progress=False)
    sources = library.stats()["by_source"]
    assert set(sources) == {"text", "markdown", "html", "epub", "pdf", "mediawiki", "articles"}
    # The only errors are the deliberately broken fixtures.
    assert {p.location.rsplit("/", 1)[-1] for p in report.errors} == {
        "scanned-pamphlet.pdf", "prolewiki-truncated.xml", "make_binary_fixtures.py",
        "articles.jsonl, line 3", "articles.jsonl, line 4",
    }
