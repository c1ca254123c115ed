"""Tuning: datasets, LoRA adapters, the tuned embedder, before and after.
Real parts throughout: SmolLM2 writes the questions, peft trains on the
dequantised SmolLM2 (a few steps), MiniLM is tuned, DuckDB records the runs."""
from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from readingroom import open_library
from readingroom.cli import main
from readingroom.evaluate.runs import runs
from readingroom.models.generate import load_generator
from readingroom.models.catalogue import TEST_GENERATOR, ModelError
from readingroom.models.resolve import resolve
from readingroom.tune import registry
from readingroom.tune.adapters import AdapterError, export_adapter, import_adapter, list_adapters
from readingroom.tune.build import build_continuations, build_questions, clean_question, reject_reason
from readingroom.tune.dataset import (DatasetError, Example, dataset_sha256, read_examples, split,
                                      write_examples)
from readingroom.tune.lora import LoraSettings, train_lora

import tune_library

pytestmark = pytest.mark.usefixtures("private_cache")

SETTINGS = LoraSettings(max_steps=4, batch_size=2, eval_every=2, checkpoint_every=2, max_length=320,
                        dropout=0.1, learning_rate=1e-3)


@pytest.fixture(scope="module")
def tuned_dir(tmp_path_factory):
    """Adapters and tuned embedders of this module's own."""
    folder = tmp_path_factory.mktemp("tuned")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("READINGROOM_TUNED", str(folder))
        yield folder


@pytest.fixture(scope="module")
def shelf(tmp_path_factory, tuned_dir):
    return tune_library.build(tmp_path_factory.mktemp("tune") / "library.duckdb")


@pytest.fixture(scope="module")
def examples(shelf):
    """Continuations of every passage, and a question example per document
    written here, so the training tests do not hang on what SmolLM2 asks."""
    with open_library(shelf) as lib:
        made = build_continuations(lib, 12)
        rows = lib.con.execute("SELECT passage_id, citation, text FROM passages ORDER BY passage_id").fetchall()
    for (pid, citation, text), question in zip(rows[:4], ["Why do anarchists oppose the state?",
                                                          "What did Proudhon mean by property?",
                                                          "What did Kropotkin observe in Siberia?",
                                                          "What is direct action?"]):
        first = text.split(". ")[0].strip().rstrip(".") + "."
        made.append(Example(question, f"The Test Collective writes that {first} [1]",
                            [{"passage_id": pid, "citation": citation, "text": text}],
                            {"kind": "manual", "passage_id": pid}))
    return made


# --- datasets ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_examples_round_trip_and_hash(tmp_path, examples):
    path = write_examples(examples, tmp_path / "data.jsonl")
    again = read_examples(path)
    assert [e.to_dict() for e in again] == [e.to_dict() for e in examples]
    assert dataset_sha256(again) == dataset_sha256(examples)
    train, held = split(examples, 0.25)
    held_passages = {e.provenance["passage_id"] for e in held}
    assert held and train and not held_passages & {e.provenance["passage_id"] for e in train}


@pytest.mark.slow
@pytest.mark.parametrize("line, problem", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"instruction": "q?", "response": "a", "sources": []}', "missing field: provenance"),
    ('{"instruction": "q?", "response": "a", "sources": [], "provenance": {"kind": "manual"}, "extra": 1}',
     "unknown field: extra"),
    ('{"instruction": "", "response": "a", "sources": [], "provenance": {"kind": "manual"}}',
     "'instruction' must be a non-empty string"),
    ('{"instruction": "q?", "response": "a", "sources": [{"passage_id": "p"}], "provenance": {"kind": "manual"}}',
     "source 1 must be an object"),
    ('{"instruction": "q?", "response": "a", "sources": [], "provenance": {"kind": "guess"}}', "'kind' is one of"),
    ('{"instruction": "q?", "response": "a", "sources": [], "provenance": {"kind": "question"}}',
     "needs the passage"),
])
def test_a_bad_line_is_reported_with_file_and_line(tmp_path, examples, line, problem):
    path = tmp_path / "shared.jsonl"
    good = json.dumps(examples[0].to_dict())
    path.write_text(f"{good}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(DatasetError) as e:
        read_examples(path)
    assert str(e.value).startswith(f"{path}:3: ") and problem in str(e.value)


def test_an_empty_or_missing_dataset_is_refused(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DatasetError, match="no examples"):
        read_examples(tmp_path / "empty.jsonl")
    with pytest.raises(DatasetError, match="no such dataset file"):
        read_examples(tmp_path / "absent.jsonl")


PASSAGE = tune_library.PARAGRAPHS["property"][0]


@pytest.mark.parametrize("question, reason", [
    ("Property is theft", "not a question"),
    ("What does this passage say about property?", "refers to the passage"),
    ("What is it?", "not a question"),
    ("Why is the sky blue over the ocean at noon?", "not answerable from the passage"),
    ("Why did Proudhon ask what property is and answered that property is theft?", "copies the passage"),
    ("What did Proudhon mean when he said that property is theft?", None),
])
def test_question_filters(question, reason):
    assert reject_reason(question, PASSAGE, []) == reason


def test_a_near_copy_of_a_kept_question_is_a_duplicate():
    from readingroom.answer.check import content_words

    kept = [set(content_words("What did Proudhon mean when he said that property is theft?"))]
    assert reject_reason("What did Proudhon mean when saying property is theft?", PASSAGE, kept) == "duplicate"


def test_the_question_is_found_in_a_wordy_reply():
    assert clean_question("Sure! Here it is. What did Proudhon mean by theft? I hope it helps.") == \
        "What did Proudhon mean by theft?"


@pytest.mark.slow
def test_questions_generated_from_passages(shelf):
    generator = load_generator(TEST_GENERATOR)
    with open_library(shelf) as lib:
        made, report = build_questions(lib, generator, 8, progress=False)
    assert report.passages == 8 and report.kept == len(made)
    assert report.kept + sum(report.rejected.values()) == 8
    assert sum(report.answers.values()) == report.kept
    for example in made:  # every kept one passes the filters and cites its passage
        assert example.instruction.endswith("?") and "[1]" in example.response
        assert example.provenance["passage_id"] == example.sources[0]["passage_id"]
        assert example.provenance["generator"] == TEST_GENERATOR


# --- LoRA -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def interrupted_then_resumed(examples, tuned_dir):
    first = train_lora(TEST_GENERATOR, examples, SETTINGS, name="faq-test", stop_after=2, progress=False)
    second = train_lora(TEST_GENERATOR, examples, SETTINGS, name="faq-test", progress=False)
    return first, second


@pytest.mark.slow
def test_training_stops_and_resumes_from_the_step_it_reached(interrupted_then_resumed):
    first, second = interrupted_then_resumed
    assert first.interrupted and first.steps == 2
    assert not (registry.folder_of("adapter", "faq-test") / registry.CARD).exists() or second.steps == 4
    assert second.resumed_from == 2 and second.steps == 4 and second.stopped == "max_steps"
    steps = [h["step"] for h in second.history if "loss" in h]
    assert steps == [1, 2, 3, 4]  # the history carries on; steps 3 and 4 were this call's
    assert second.base_eval_loss == first.base_eval_loss
    assert second.best_eval_loss is not None and second.steps_per_second > 0


@pytest.mark.slow
def test_a_resumed_run_takes_the_steps_an_uninterrupted_one_takes(interrupted_then_resumed, examples):
    from safetensors.torch import load_file

    _, resumed = interrupted_then_resumed
    whole = train_lora(TEST_GENERATOR, examples, SETTINGS, progress=False)
    assert whole.resumed_from == 0 and whole.steps == 4  # the finished run left no checkpoint behind
    a = load_file(str(resumed.adapter_folder / registry.ADAPTER_WEIGHTS))
    b = load_file(str(whole.adapter_folder / registry.ADAPTER_WEIGHTS))
    assert a.keys() == b.keys()
    assert all((a[k] - b[k]).abs().max() < 1e-5 for k in a)
    assert [h.get("loss") for h in resumed.history] == pytest.approx([h.get("loss") for h in whole.history],
                                                                      abs=1e-4)


@pytest.mark.slow
def test_early_stopping_keeps_the_best_adapter(examples, tuned_dir):
    settings = LoraSettings(max_steps=40, batch_size=2, eval_every=1, checkpoint_every=50, patience=1,
                            max_length=320, learning_rate=0.05, dropout=0.0)  # too fast: it soon gets worse
    result = train_lora(TEST_GENERATOR, examples, settings, progress=False)
    assert result.stopped == "early stopping" and result.steps < 40
    evals = [h["eval_loss"] for h in result.history if "eval_loss" in h and h["step"] > 0]
    assert result.best_eval_loss == min(evals)


@pytest.mark.slow
def test_the_saved_adapter_has_a_card_and_answers(interrupted_then_resumed, examples, shelf):
    folder = registry.folder_of("adapter", "faq-test")
    card = json.loads((folder / registry.CARD).read_text())
    base = resolve(TEST_GENERATOR)
    assert card["base_sha256"] == base.identity and card["dataset"]["sha256"] == dataset_sha256(examples)
    assert card["settings"]["max_steps"] == 4 and card["metrics"]["steps"] == 4
    assert sorted(p.name for p in folder.iterdir()) == sorted(["README.md", "adapter_config.json",
                                                               "adapter_model.safetensors", "card.json"])
    for spec in ("adapter:faq-test", "faq-test"):
        resolved = resolve(spec, role="generator")
        assert resolved.adapter == folder and resolved.base.identity == base.identity
    generator = load_generator("adapter:faq-test")
    assert generator.backend == "transformers" and generator.name == "adapter:faq-test"
    assert generator.generate([{"role": "user", "content": "What is mutual aid?"}], max_tokens=8).strip()
    assert [c["name"] for c in list_adapters()] == ["faq-test"]
    from readingroom.ui.chat import generator_choices

    assert "adapter:faq-test" in [name for _, name in generator_choices()]  # the chat's settings offer it
    from readingroom.answer.pipeline import answer
    from readingroom.search.searcher import searcher_for

    with open_library(shelf) as lib:
        result = answer(searcher_for(lib), "Why do anarchists oppose the state?", generator=generator, k=2)
    assert result.passages


@pytest.mark.slow
def test_a_changed_adapter_no_longer_resolves(interrupted_then_resumed, tmp_path, tuned_dir):
    copy = tmp_path / "exported"
    export_adapter("faq-test", copy)
    import_adapter(copy, "tampered")
    weights = registry.folder_of("adapter", "tampered") / registry.ADAPTER_WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ModelError, match="does not match its card"):
        resolve("adapter:tampered")
    shutil.rmtree(weights.parent)


@pytest.mark.slow
def test_export_and_import_check_everything(interrupted_then_resumed, tmp_path):
    exported = export_adapter("faq-test", tmp_path / "faq-test")
    with pytest.raises(AdapterError, match="exists already"):
        export_adapter("faq-test", exported)
    imported = import_adapter(exported, "from-elsewhere")
    assert resolve("adapter:from-elsewhere").adapter == imported

    def broken(change):
        folder = tmp_path / f"broken-{change.__name__}"
        shutil.copytree(exported, folder)
        change(folder)
        return folder

    def pickle_weights(folder):
        (folder / "adapter_model.bin").write_bytes(b"\x80\x04K\x01.")

    def no_card(folder):
        (folder / "card.json").unlink()

    def other_weights(folder):
        card = json.loads((folder / "card.json").read_text())
        card["adapter_sha256"] = "0" * 64
        (folder / "card.json").write_text(json.dumps(card))

    def unknown_base(folder):
        card = json.loads((folder / "card.json").read_text())
        card["base_sha256"] = "f" * 64
        (folder / "card.json").write_text(json.dumps(card))

    def not_safetensors(folder):
        card = json.loads((folder / "card.json").read_text())
        (folder / "adapter_model.safetensors").write_bytes(b"not a tensor file")
        from readingroom.hashing import file_sha256
        card["adapter_sha256"] = file_sha256(folder / "adapter_model.safetensors")
        (folder / "card.json").write_text(json.dumps(card))

    for change, message in [(pickle_weights, "pickle"), (no_card, "no card.json"),
                            (other_weights, "does not match the card"), (unknown_base, "does not know"),
                            (not_safetensors, "not a readable safetensors")]:
        with pytest.raises(AdapterError, match=message):
            import_adapter(broken(change), "broken")
    assert not registry.folder_of("adapter", "broken").exists()


# --- the embedder ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_the_tuned_embedder_is_saved_pinned_and_searchable(shelf, examples, tuned_dir):
    from readingroom.models.embed import embed_library
    from readingroom.search.searcher import Searcher
    from readingroom.tune.embedder import EmbedderSettings, tune_embedder
    from readingroom.tune.measure import record_embedder

    questions = [Example(e.instruction if e.kind != "continuation" else e.instruction.split(".")[0] + "?",
                         e.response, e.sources, {"kind": "question", "passage_id": e.provenance["passage_id"]})
                 for e in examples]
    with open_library(shelf) as lib:
        result = tune_embedder(lib, questions, name="mini-test", progress=False,
                               settings=EmbedderSettings(batch_size=4, held_out=0.25))
        assert result.steps >= 2 and result.held_out_questions >= 1
        assert 0 <= result.recall_before <= 1 and 0 <= result.recall_after <= 1
        record_embedder(lib, result, "all-minilm-l6-v2", questions)
        tuned = resolve("embedder:mini-test", role="embedder")
        card = json.loads((result.folder / registry.CARD).read_text())
        assert tuned.identity == card["sha256"] != resolve("all-minilm-l6-v2").identity
        assert (result.folder / "model.safetensors").exists() and not list(result.folder.rglob("*.bin"))
        report = embed_library(lib, "embedder:mini-test", progress=False)
        assert report.embedded == 12
        hits = Searcher(lib, "embedder:mini-test").search("Proudhon property theft", k=3, mode="vector")
        assert any("Proudhon" in h.text for h in hits)
        assert runs(lib, "embedder-tuning").iloc[0]["recall@5_after"] == result.recall_after


# --- measuring, the command line ---------------------------------------------------------------------

@pytest.mark.slow
def test_perplexity_before_and_after_is_recorded(interrupted_then_resumed, examples, shelf):
    from readingroom.tune.measure import held_out_perplexity, record_training

    _, second = interrupted_then_resumed
    held = [e for e in examples if e.kind == "continuation"][:3]
    with open_library(shelf) as lib:
        record_training(lib, second, TEST_GENERATOR, SETTINGS, "faq-test")
        before = held_out_perplexity(lib, TEST_GENERATOR, held)
        after = held_out_perplexity(lib, "adapter:faq-test", held)
        table = runs(lib, "perplexity")
        assert set(table["model"]) == {TEST_GENERATOR, "adapter:faq-test"}
        assert before.metrics["perplexity"] > 1 and after.metrics["perplexity"] > 1
        assert before.metrics["perplexity"] != after.metrics["perplexity"]
        assert runs(lib, "lora").iloc[0]["steps"] == 4


@pytest.mark.slow
def test_cli_dataset_lora_and_adapters(shelf, tmp_path, tuned_dir, examples):
    runner = CliRunner()
    out = tmp_path / "cli.jsonl"
    done = runner.invoke(main, ["tune", "dataset", "-o", str(out), "--questions", "0", "--continuations", "12",
                                "--db", shelf])
    assert done.exit_code == 0, done.output
    assert len(read_examples(out)) == len(examples) - 4  # the continuations the fixture made too
    write_examples(examples, out)
    done = runner.invoke(main, ["tune", "lora", str(out), "--name", "cli-test", "--base", TEST_GENERATOR,
                                "--steps", "2", "--batch-size", "2", "--eval-every", "2", "--max-length", "256",
                                "--quiet", "--db", shelf])
    assert done.exit_code == 0, done.output
    assert "adapter:cli-test: 2 steps" in done.output
    listed = runner.invoke(main, ["adapters", "list"])
    assert "adapter:cli-test" in listed.output
    exported = tmp_path / "cli-export"
    assert runner.invoke(main, ["adapters", "export", "cli-test", str(exported)]).exit_code == 0
    (exported / "adapter_model.pt").write_bytes(b"pickled")
    refused = runner.invoke(main, ["adapters", "import", str(exported), "--name", "cli-again"])
    assert refused.exit_code != 0 and "pickle" in refused.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": 1}\n')
    failed = runner.invoke(main, ["tune", "lora", str(bad), "--name", "x", "--db", shelf])
    assert failed.exit_code != 0 and f"{bad}:1:" in failed.output
