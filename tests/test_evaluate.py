"""The retrieval evaluation harness: gold matching, metrics, the runs table,
the CLI, and the shipped benchmark files."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from readingroom import Block, Document, ingest, ingest_paths, open_library
from readingroom.cli import main
from readingroom.evaluate.metrics import ndcg_at, retrieval_metrics
from readingroom.evaluate.questions import GoldFinder, Question, QuestionsError, load_questions
from readingroom.evaluate.retrieval import evaluate_retrieval
from readingroom.evaluate.runs import runs
from readingroom.corpus.passages import Splitter

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "data" / "benchmarks"

FIRST = "Workers of the mills met at dawn in the square. They voted to stop the looms until wages rose."
SECOND = "The owners answered with a lockout that lasted nine weeks. Hunger broke the strike in the end."


# BM25 indexes go to a cache of each test's own (conftest.private_cache).
pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture
def mills(library):
    # A small budget and no overlap: each sentence pair lands in its own passage.
    document = Document("test", "mills", "The Mills", [Block(FIRST, section=("Strike",)), Block(SECOND, section=("Strike",))],
                        authors=("A. Weaver",), year=1890, language="en")
    ingest(library, [document], splitter=Splitter(budget=24, overlap=0), progress=False)
    return library


def passage_texts(lib, ids):
    return {lib.con.execute("SELECT text FROM passages WHERE passage_id = ?", [i]).fetchone()[0] for i in ids}


def test_gold_that_straddles_two_passages_is_found_in_either(mills):
    (n,) = mills.con.execute("SELECT count(*) FROM passages").fetchone()
    assert n >= 2
    straddling = "until wages rose. The owners answered"
    found = GoldFinder(mills).passages(Question("q", gold=straddling))
    assert len(found) == 2
    assert any("until wages rose" in t for t in passage_texts(mills, found))
    assert any("The owners answered" in t for t in passage_texts(mills, found))


def test_gold_matches_across_line_breaks_and_by_document_or_section(mills):
    finder = GoldFinder(mills)
    assert len(finder.passages(Question("q", gold="a lockout\n  that lasted nine weeks."))) == 1
    assert finder.passages(Question("q", gold="not in the library at all")) == set()
    every = {r[0] for r in mills.con.execute("SELECT passage_id FROM passages").fetchall()}
    assert finder.passages(Question("q", gold_doc="The Mills")) == every
    assert finder.passages(Question("q", gold_section="Strike")) == every


def test_metrics_follow_their_definitions():
    assert ndcg_at(["a", "x", "b"], {"a", "b"}) == pytest.approx((1 + 1 / 2) / (1 + 1 / 1.5849625007211563))
    assert ndcg_at(["x"], set()) == 0.0
    details = [{"rank": 1, "ndcg": 1.0}, {"rank": 4, "ndcg": 0.5}, {"rank": None, "ndcg": 0.0}, {"rank": 12, "ndcg": 0.0}]
    metrics = retrieval_metrics(details, k=10)
    assert metrics["recall@1"] == pytest.approx(1 / 4)
    assert metrics["recall@5"] == pytest.approx(2 / 4)
    assert metrics["recall@10"] == pytest.approx(2 / 4)
    assert metrics["mrr@10"] == pytest.approx((1 + 1 / 4) / 4)
    assert metrics["ndcg@10"] == pytest.approx(1.5 / 4)


@pytest.mark.parametrize("line, problem", [
    ("{not json", "not valid JSON"),
    ('["q"]', "must be a JSON object"),
    ('{"gold": "x"}', "'q'"),
    ('{"q": "why?"}', "give one of gold"),
    ('{"q": "why?", "gold": ""}', "'gold' must be a non-empty string"),
])
def test_a_bad_questions_file_is_named_with_its_line(tmp_path, line, problem):
    path = tmp_path / "qa.jsonl"
    path.write_text('{"q": "fine", "gold": "text"}\n' + line + "\n")
    with pytest.raises(QuestionsError, match=problem) as caught:
        load_questions(path)
    assert f"{path}:2" in str(caught.value)


def test_an_evaluation_is_recorded_as_a_run_with_settings_and_corpus(mills, tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps(q) for q in [
        {"q": "Why did the workers stop the looms?", "gold": "They voted to stop the looms"},
        {"q": "How long did the lockout last?", "gold": "a lockout that lasted nine weeks"},
        {"q": "What is the capital of Peru?", "gold": "Lima is the capital"},
    ]))
    run = evaluate_retrieval(mills, qa, k=10, mode="bm25", progress=False)
    assert run.metrics["questions"] == 3 and run.metrics["gold_not_in_library"] == 1
    assert run.metrics["recall@1"] == pytest.approx(2 / 3)
    table = runs(mills, "retrieval")
    assert len(table) == 1 and table.iloc[0]["run_id"] == run.run_id
    assert json.loads(table.iloc[0]["settings"])["mode"] == "bm25"
    stored = mills.con.execute("SELECT corpus_sha256, dataset_sha256, details FROM runs").fetchone()
    assert len(stored[0]) == 64 and len(stored[1]) == 64 and len(json.loads(stored[2])) == 3


def test_cli_eval_retrieval_prints_metrics_and_names_a_bad_file(mills, tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"q": "lockout nine weeks", "gold": "a lockout that lasted nine weeks"}) + "\n")
    mills.close()
    db = str(mills.path)
    result = CliRunner().invoke(main, ["eval", "retrieval", "--qa", str(qa), "--mode", "bm25", "--json", "--db", db])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["recall@1"] == 1.0
    listed = CliRunner().invoke(main, ["eval", "runs", "--db", db])
    assert "retrieval" in listed.output
    qa.write_text('{"q": "x"}\n')
    result = CliRunner().invoke(main, ["eval", "retrieval", "--qa", str(qa), "--db", db])
    assert result.exit_code != 0 and f"{qa}:1" in result.output


def test_the_faq_benchmark_is_well_formed_and_its_sections_are_in_the_default_corpus():
    questions = load_questions(BENCHMARKS / "anarchist-faq.jsonl")
    assert len(questions) > 500 and all(q.gold_section for q in questions)
    db = os.environ.get("READINGROOM_DB")
    if not db or not Path(db).exists():
        pytest.skip("no default library here (setup.sh test makes one)")
    with open_library(db, read_only=True) as lib:
        if not lib.con.execute("SELECT count(*) FROM documents WHERE source = 'anarchist-faq'").fetchone()[0]:
            pytest.skip("the default library holds no Anarchist FAQ")
        finder = GoldFinder(lib)
        sample = questions[::10]
        gold = {q.gold_section: finder.passages(q) for q in sample}
        # Headings are kept in passages.section, not in the text: were they
        # indexed, every section's passages would hold its heading.
        headed = sum(lib.con.execute(
            "SELECT count(*) FROM passages WHERE passage_id IN (SELECT unnest(?)) AND contains(text, ?)",
            [list(ids), heading]).fetchone()[0] > 0 for heading, ids in gold.items())
    assert [h for h, ids in gold.items() if not ids] == []
    assert headed <= len(sample) // 20  # a heading quoted in its own text now and then


def load_benchmark_checker():
    """data/benchmarks/check_benchmarks.py as a module (it is a script, not
    part of the package)."""
    spec = importlib.util.spec_from_file_location("check_benchmarks", BENCHMARKS / "check_benchmarks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gold_spans_are_checked_and_found_on_a_tiny_benchmark_that_ships(library, fixtures):
    """The gold checks the Marx-Engels benchmark gets only where its corpus
    is, run on a tiny benchmark over the fixture texts; and GoldFinder finds
    each span's passage in a library of those texts."""
    checker = load_benchmark_checker()
    tiny = fixtures / "benchmark" / "gold-spans.jsonl"
    corpus = fixtures / "text"
    names = [line.split(",")[0] for line in (corpus / "manifest.csv").read_text().splitlines()[1:]]
    texts = {name: checker.collapse((corpus / name).read_text(encoding="utf-8-sig")) for name in names}
    everything = " ".join(texts.values())

    def gold_errors(rows, corpus_all=everything):
        errors = []
        checker.check_keys(tiny, rows, {"q": str, "gold": str, "file": str}, errors)
        checker.check_gold(tiny, rows, names, texts, corpus_all, errors)
        return errors

    rows = checker.load_jsonl(tiny, [])
    assert len(rows) == 5 and gold_errors(rows) == []
    # The checks can fail: a span the texts do not hold, one in another file
    # than named, one that occurs twice.
    missing = gold_errors([dict(rows[0], gold=rows[0]["gold"].replace("class", "caste"))])
    assert len(missing) == 2 and "occurs 0 times" in missing[0] and "not found in manifesto" in missing[1]
    elsewhere = gold_errors([dict(rows[1], file="condition-excerpt.txt")])
    assert len(elsewhere) == 1 and "not found in condition-excerpt.txt" in elsewhere[0]
    twice = gold_errors(rows[:1], corpus_all=everything + " " + texts["manifesto-excerpt.txt"])
    assert len(twice) == 1 and "occurs 2 times" in twice[0]

    ingest_paths(library, [corpus], progress=False)
    finder = GoldFinder(library)
    for question in load_questions(tiny):
        found = finder.passages(question)
        assert found, question.q
        texts_found = [library.con.execute("SELECT text FROM passages WHERE passage_id = ?", [p]).fetchone()[0]
                       for p in found]
        first_word = question.gold.split()[0]
        assert any(first_word in t for t in texts_found)


def test_the_marx_engels_benchmarks_are_well_formed_and_check_out_where_their_corpus_is():
    result = subprocess.run([sys.executable, str(BENCHMARKS / "check_benchmarks.py")], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout or "skipped" in result.stdout
    for name in ("marx-engels.jsonl", "marx-engels-de-fr.jsonl"):
        assert len(load_questions(BENCHMARKS / name)) >= 10
    assert len(load_questions(BENCHMARKS / "unanswerable.jsonl", require_gold=False)) >= 20
