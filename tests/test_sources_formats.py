"""The HTML, EPUB, PDF and MediaWiki readers on the fixtures in data/fixtures.

Damaged inputs (truncated copies, a zip without an OPF, an encrypted PDF)
are made in tmp_path from the committed fixtures, except the truncated wiki
export, which is committed so that it can be looked at.
"""
from __future__ import annotations

import bz2
import zipfile
from pathlib import Path

import pytest

from readingroom.corpus.document import Document
from readingroom.corpus.sources import Problem, ReadOptions, epub, html, mediawiki, pdf, read_paths
from readingroom.corpus.textio import SourceError
from readingroom.dates import date_and_year

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"
MANIFESTO = FIXTURES / "html" / "manifesto-ch01.htm"
CONQUEST = FIXTURES / "epub" / "conquest-of-bread.epub"
REFORM = FIXTURES / "pdf" / "reform-or-revolution.pdf"
SCANNED = FIXTURES / "pdf" / "scanned-pamphlet.pdf"
WIKI = FIXTURES / "mediawiki" / "prolewiki-sample.xml"
WIKI_TRUNCATED = FIXTURES / "mediawiki" / "prolewiki-truncated.xml"  # cut inside the last page


def read_all(reader, path: Path) -> list:
    return list(reader.read(path, path.name, ReadOptions()))


def documents(items) -> list[Document]:
    return [i for i in items if isinstance(i, Document)]


def problems(items) -> list[Problem]:
    return [i for i in items if isinstance(i, Problem)]


def truncated_copy(source: Path, tmp_path: Path, name: str | None = None, fraction: float = 0.5) -> Path:
    data = source.read_bytes()
    target = tmp_path / (name or source.name)
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


# --- HTML ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def manifesto() -> Document:
    (doc,) = documents(read_all(html, MANIFESTO))
    return doc


def test_html_metadata(manifesto):
    assert manifesto.source == "html"
    assert manifesto.title == "Manifesto of the Communist Party"
    assert manifesto.authors == ["Karl Marx", "Frederick Engels"]
    assert (manifesto.date, manifesto.year) == ("1848-02-21", 1848)
    assert manifesto.language == "en"


def test_html_sections_nest_by_heading_level_and_are_not_text(manifesto):
    by_start = {b.text.split()[0] + " " + b.text.split()[1]: b for b in manifesto.blocks}
    assert by_start["A spectre"].section == ("Manifesto of the Communist Party",)
    assert by_start["Freeman and"].section == (
        "Manifesto of the Communist Party", "I. Bourgeois and Proletarians",
    )
    assert by_start["In the"].section == (
        "Manifesto of the Communist Party", "I. Bourgeois and Proletarians", "The earlier epochs",
    )
    assert not any(b.text in ("I. Bourgeois and Proletarians", "The earlier epochs") for b in manifesto.blocks)


def test_html_paragraph_anchors(manifesto):
    anchors = {" ".join(b.text.split()[:3]): b.anchor for b in manifesto.blocks}
    assert anchors["A spectre is"] == "s0p01"  # <a name> inside the <p>
    assert anchors["Where is the"] == "s0p02"  # <a name> just before the <p>
    assert anchors["The history of"] == "ch01"  # none of its own: the heading's id
    assert anchors["In the earlier"] == "s1p03"  # <p id="...">
    assert anchors["Our epoch, the"] == "s1p05"
    freeman = next(b for b in manifesto.blocks if b.text.startswith("Freeman"))
    assert "guild-master and journeyman, in a word" in freeman.text  # whitespace collapsed


def test_html_navigation_and_boilerplate_stripped(manifesto):
    text = manifesto.text
    for boilerplate in ("Table of Contents", "Next", "MIA", "Marxists Internet Archive",
                        "Support the archive", "Chapter II", "1987, 2000"):
        assert boilerplate not in text
    assert "trackingSecret" not in text and "document.write" not in text
    assert "font-size" not in text
    assert manifesto.blocks[0].text.startswith("Source: English edition of 1888")


def test_html_escaped_script_is_literal_text(manifesto):
    note = next(b for b in manifesto.blocks if b.text.startswith("Transcriber"))
    assert "<script>alert(1)</script>" in note.text
    assert note.anchor == "s1p06"


def test_html_list_items_are_blocks(manifesto):
    assert any(b.text == "From these burgesses the first elements of the bourgeoisie were developed."
               for b in manifesto.blocks)


def test_html_declared_charset_is_honoured(tmp_path):
    page = tmp_path / "proudhon.html"
    page.write_bytes(
        '<html lang="FR"><head><meta charset="iso-8859-1"><title>Qu\'est-ce que la propriété ?</title>'
        '</head><body><p>La propriété, c\'est le vol. Proudhon écrivait au café.</p></body></html>'
        .encode("latin-1")
    )
    (doc,) = documents(read_all(html, page))
    assert doc.title == "Qu'est-ce que la propriété ?"
    assert doc.blocks[0].text == "La propriété, c'est le vol. Proudhon écrivait au café."
    assert doc.language == "fr"


def test_html_without_paragraphs_is_an_error(tmp_path):
    page = tmp_path / "index.html"
    page.write_text('<html><body><nav><a href="a.htm">A</a></nav><p><a href="b.htm">Next</a></p></body></html>')
    with pytest.raises(SourceError) as error:
        read_all(html, page)
    assert error.value.location == str(page)
    assert error.value.problem == "has no paragraphs of text"


def test_html_end_to_end():
    items = list(read_paths([MANIFESTO]))
    (doc,) = documents(items)
    assert not problems(items)
    assert doc.key == "manifesto-ch01.htm" and doc.location == str(MANIFESTO)


# --- EPUB ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def conquest() -> Document:
    (doc,) = documents(read_all(epub, CONQUEST))
    return doc


def test_epub_metadata(conquest):
    assert conquest.source == "epub"
    assert conquest.title == "The Conquest of Bread"
    assert conquest.authors == ["Peter Kropotkin"]
    assert conquest.year == 1906
    assert conquest.language == "en"


def test_epub_chapters_in_spine_order_with_sections_and_anchors(conquest):
    assert [b.section for b in conquest.blocks] == [("Our Riches",)] * 2 + [("Well-Being for All",)] * 2
    assert [b.anchor for b in conquest.blocks] == [
        "chap_01.xhtml", "chap_01.xhtml", "chap_02.xhtml#wb1", "chap_02.xhtml#wb2",
    ]
    assert conquest.blocks[0].text.startswith("The human race has travelled a long way")
    assert "Our Riches" not in conquest.text  # the heading is the section, not text


def test_epub_truncated_is_an_error(tmp_path):
    broken = truncated_copy(CONQUEST, tmp_path)
    with pytest.raises(SourceError) as error:
        read_all(epub, broken)
    assert error.value.location == str(broken)
    assert error.value.problem.startswith("is not a readable EPUB (")
    assert error.value.problem.endswith("truncated or damaged?")


def test_epub_without_opf_is_an_error(tmp_path):
    broken = tmp_path / "no-opf.epub"
    with zipfile.ZipFile(broken, "w") as z:
        z.writestr("mimetype", "application/epub+zip")
        z.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
            '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
    (problem,) = problems(read_paths([broken]))
    assert problem.location == str(broken)
    assert "is not a readable EPUB" in problem.message


def test_epub_end_to_end():
    items = list(read_paths([CONQUEST.parent]))
    assert not problems(items)
    (doc,) = documents(items)
    assert doc.key == "conquest-of-bread.epub"


# --- PDF -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def reform() -> Document:
    items = read_all(pdf, REFORM)
    assert not problems(items)
    (doc,) = documents(items)
    return doc


def test_pdf_metadata(reform):
    assert reform.source == "pdf"
    assert reform.title == "Reform or Revolution"
    assert reform.authors == ["Rosa Luxemburg"]
    assert (reform.date, reform.year) == ("1900-04-04", 1900)


def test_pdf_paragraphs_per_page_with_page_anchors(reform):
    assert [b.page for b in reform.blocks] == [1, 1, 1, 2, 2, 3]
    assert all(b.anchor == f"page={b.page}" for b in reform.blocks)
    assert reform.blocks[0].text == "Introduction"
    assert reform.blocks[2].text.startswith("Certainly not.")
    assert reform.blocks[2].text.endswith("an indissoluble tie.")
    assert not any(b.text in ("1", "2", "3") for b in reform.blocks)  # page numbers dropped


def test_pdf_hyphenated_line_breaks_joined(reform):
    assert "the social revolution, its aim." in reform.blocks[3].text
    assert "revolu-" not in reform.text


def test_pdf_scanned_has_no_text_layer():
    with pytest.raises(SourceError) as error:
        read_all(pdf, SCANNED)
    assert error.value.location == str(SCANNED)
    assert error.value.problem.startswith("has no text layer (a scanned document?)")
    assert "ocrmypdf" in error.value.problem


def test_pdf_truncated_is_an_error(tmp_path):
    broken = truncated_copy(REFORM, tmp_path)
    with pytest.raises(SourceError) as error:
        read_all(pdf, broken)
    assert error.value.location == str(broken)
    assert error.value.problem.startswith("is not a readable PDF (")
    assert error.value.problem.endswith("truncated or damaged?")


def test_pdf_encrypted_is_an_error(tmp_path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(REFORM))
    writer.encrypt(user_password="comrade", algorithm="RC4-128")
    locked = tmp_path / "locked.pdf"
    with open(locked, "wb") as f:
        writer.write(f)
    (problem,) = problems(read_paths([locked]))
    assert problem.location == str(locked)
    assert problem.message == "is encrypted; decrypt it first"


def test_pdf_end_to_end():
    items = list(read_paths([REFORM.parent]))
    (doc,) = documents(items)
    (problem,) = problems(items)
    assert doc.key == "reform-or-revolution.pdf"
    assert problem.location == str(SCANNED) and "has no text layer" in problem.message


# --- MediaWiki -----------------------------------------------------------------
@pytest.fixture(scope="module")
def wiki_items() -> list:
    return read_all(mediawiki, WIKI)


def test_wiki_articles_only_no_redirects_or_talk(wiki_items):
    assert not problems(wiki_items)
    assert [d.title for d in documents(wiki_items)] == ["Paris Commune", "Rosa Luxemburg"]


def test_wiki_metadata(wiki_items):
    commune = documents(wiki_items)[0]
    assert commune.source == "mediawiki"
    assert commune.key == "ProleWiki/Paris Commune"
    assert commune.url == "https://en.prolewiki.org/wiki/Paris_Commune"
    assert (commune.date, commune.year) == ("2024-05-28", 2024)  # the latest revision
    assert commune.language == "en"
    assert "early draft" not in commune.text


def test_wiki_sections_and_heading_anchors(wiki_items):
    commune = documents(wiki_items)[0]
    lead = commune.blocks[0]
    assert lead.section == () and lead.anchor is None
    assert lead.text.startswith("The Paris Commune was a revolutionary workers' government that held power in Paris")
    elections = next(b for b in commune.blocks if b.text.startswith("The Commune was formed"))
    assert elections.section == ("Measures of the Commune", "Elections")
    assert elections.anchor == "Elections"
    measures = next(b for b in commune.blocks if b.text.startswith("The Commune separated"))
    assert measures.anchor == "Measures_of_the_Commune"
    assert any(b.text == "Abolition of the standing army and its replacement by the armed people."
               for b in commune.blocks)  # a list item is a paragraph of its own


def test_wiki_markup_removed(wiki_items):
    text = "\n".join(d.text for d in documents(wiki_items))
    for markup in ("Infobox", "{{", "[[", "'''", "Lissagaray", "Civil War in France", "thumb",
                   "barricade on the Rue", "Category", "Revolutions", "de:Rosa", "References"):
        assert markup not in text


def test_wiki_truncated_yields_earlier_pages_then_error():
    broken = WIKI_TRUNCATED
    items = []
    with pytest.raises(SourceError) as error:
        for item in mediawiki.read(broken, broken.name, ReadOptions()):
            items.append(item)
    assert [d.title for d in documents(items)] == ["Paris Commune"]
    assert error.value.location == str(broken)
    assert "is not well-formed XML at line " in error.value.problem
    assert "truncated or damaged?" in error.value.problem


def test_wiki_truncated_end_to_end_keeps_earlier_pages(tmp_path):
    broken = tmp_path / "cut.xml.bz2"
    broken.write_bytes(bz2.compress(WIKI.read_bytes())[:-200])
    items = list(read_paths([broken]))
    assert [type(i).__name__ for i in items][-1] == "Problem"
    assert items[-1].location == str(broken) and "truncated or damaged?" in items[-1].message


def test_wiki_not_mediawiki(tmp_path):
    feed = tmp_path / "feed.xml"
    feed.write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>News</title></channel></rss>')
    with pytest.raises(SourceError) as error:
        read_all(mediawiki, feed)
    assert error.value.location == str(feed)
    assert error.value.problem == "is XML but not a MediaWiki export (root element is <rss>)"


def test_wiki_page_without_text_is_a_warning(tmp_path):
    xml = WIKI.read_text(encoding="utf-8").replace(
        "<title>Rosa Luxemburg</title>", "<title>Stub</title>"
    )
    start = xml.index("{{Infobox person")
    end = xml.index("</text>", start)
    stub = tmp_path / "stub.xml"
    stub.write_text(xml[:start] + "{{Stub}} [[Category:Stubs]]" + xml[end:], encoding="utf-8")
    items = read_all(mediawiki, stub)
    assert [d.title for d in documents(items)] == ["Paris Commune"]
    (problem,) = problems(items)
    assert problem == Problem(f"{stub}: page 'Stub'", "has no text", level="warning")


def test_wiki_end_to_end_compressed(tmp_path):
    packed = tmp_path / "prolewiki.xml.bz2"
    packed.write_bytes(bz2.compress(WIKI.read_bytes()))
    items = list(read_paths([packed]))
    assert not problems(items)
    assert [d.key for d in documents(items)] == ["ProleWiki/Paris Commune", "ProleWiki/Rosa Luxemburg"]
    assert all(d.location == str(packed) for d in documents(items))


def test_wiki_without_siteinfo_keys_by_file(tmp_path):
    xml = WIKI.read_text(encoding="utf-8")
    bare = tmp_path / "export.xml"
    bare.write_text(xml[: xml.index("<siteinfo>")] + xml[xml.index("</siteinfo>") + len("</siteinfo>"):],
                    encoding="utf-8")
    commune = documents(read_all(mediawiki, bare))[0]
    assert commune.key == "export.xml/Paris Commune"
    assert commune.url is None


def test_shared_helpers():
    assert date_and_year("1848-02-21T10:00:00Z") == ("1848-02-21", 1848)
    assert date_and_year("February 1848") == (None, 1848)
    assert mediawiki.article_url_prefix("https://w.example.org/index.php?title=Main_Page") == (
        "https://w.example.org/index.php?title="
    )
