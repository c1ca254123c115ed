"""Training examples from the library's own passages.

Questions: the generator reads a passage and writes a question it answers;
the question is kept only if it passes the filters below; the answer is
written by the generator from that passage alone, with the prompt answers
use (answer.build_messages), and checked like any answer (support.py):
what survives the check is the response, so every example cites [1] and
every sentence in it is supported. When nothing survives (small models
often fail), the response is the passage's sentence that best matches the
question, quoted and cited (`extractive_answer`): still true to the
passage, and said so in the provenance.

Filters, each reported with how many questions it rejected:
- "not a question": no question mark at the end, or under 4 or over 40 words;
- "refers to the passage": "this passage", "the author", "the text" ... (a
  question that cannot stand alone, as a reader's would);
- "trivial": fewer than two content words;
- "copies the passage": 60% of the question's words run on in the passage
  as they stand (a sentence of it with a question word in front);
- "not answerable from the passage": under half of the question's content
  words occur in the passage (the check a retriever can follow);
- "duplicate": shares 80% of its content words with a question kept before.

Continuations: a passage split at a sentence near its middle; the start is
the instruction and the rest the response, for plain domain adaptation.
"""
from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace

from tqdm.auto import tqdm

from readingroom.library.store import Library
from readingroom.answer.check import speaker, split_sentences
from readingroom.text import content_words
from readingroom.tune.dataset import Example

QUESTION_SYSTEM = "You write questions for a reading group. Reply with one question only, ending with a question mark."
QUESTION_PROMPT = "{text}\n\nWrite one question that the text above answers."
QUESTION_TOKENS = 48
ANSWER_TOKENS = 160
REFERS_TO_PASSAGE = re.compile(r"\b(this|the|above) (passage|text|excerpt|author|writer|paragraph)\b|\bthe author'?s\b",
                               re.I)
MIN_COVERAGE = 0.5
DUPLICATE_JACCARD = 0.8


@dataclass
class BuildReport:
    passages: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)  # how responses were written: "model, checked" / "extractive"
    seconds: float = 0.0

    def summary(self) -> str:
        why = ", ".join(f"{n} {reason}" for reason, n in self.rejected.most_common()) or "none"
        how = ", ".join(f"{n} {kind}" for kind, n in self.answers.most_common())
        return (f"{self.kept} examples from {self.passages} passages in {self.seconds:.0f} s; "
                f"rejected: {why}; answers: {how or 'none'}")


def sample_passages(lib: Library, n: int, *, seed: int = 0, min_words: int = 40, doc_ids=None) -> list:
    """n passages drawn at random (repeatably for a seed) among those of at
    least `min_words` words, as objects answer.build_messages can number."""
    only = "" if doc_ids is None else "AND p.doc_id IN (SELECT unnest($docs))"
    rows = lib.con.execute(
        "SELECT p.passage_id, p.text, p.citation, d.title, d.authors FROM passages p JOIN documents d USING (doc_id) "
        f"WHERE length(p.text) - length(replace(p.text, ' ', '')) >= $words {only} ORDER BY p.passage_id",
        {"words": min_words - 1, **({} if doc_ids is None else {"docs": list(doc_ids)})}).fetchall()
    chosen = random.Random(seed).sample(rows, min(n, len(rows)))
    return [SimpleNamespace(passage_id=r[0], text=r[1], citation=r[2], title=r[3], authors=list(r[4]),
                            author="; ".join(r[4])) for r in chosen]


def source_of(passage) -> dict:
    return {"passage_id": passage.passage_id, "citation": passage.citation, "text": passage.text}


def passage_of(source: dict):
    """A dataset source as something build_messages can number (an imported
    dataset's passages need not be in this library)."""
    citation = source.get("citation", "")
    return SimpleNamespace(passage_id=source["passage_id"], text=source["text"], citation=citation,
                           title=citation, authors=[], author="")


def clean_question(text: str) -> str:
    """The first sentence of the model's reply that ends with a question mark
    (small models wrap it in other words), else its first line."""
    flat = " ".join(text.split())
    found = re.search(r"(?:^|(?<=[.!?:\"”]\s))([A-Z][^.!?:]*\?)", flat)
    line = found[1] if found else next((l for l in text.strip().splitlines() if l.strip()), "")
    line = re.sub(r"^\s*(question\s*:|q\s*:|\d+[.)])\s*", "", line, flags=re.I).strip().strip('"“”')
    return " ".join(line.split())


def question_messages(text: str) -> list[dict]:
    return [{"role": "system", "content": QUESTION_SYSTEM},
            {"role": "user", "content": QUESTION_PROMPT.format(text=text)}]


def _normal(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def longest_shared_run(a: list[str], b: list[str]) -> int:
    """The most consecutive words `a` and `b` share."""
    best, previous = 0, [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def copies(question: str, passage_text: str) -> bool:
    """The question is a stretch of the passage with a question word in
    front: most of its words run on in the passage as they stand."""
    words = _normal(question).split()
    return longest_shared_run(words, _normal(passage_text).split()) >= max(6, 0.6 * len(words))


def reject_reason(question: str, passage_text: str, kept: list[set]) -> str | None:
    """Why `question` is not kept (None: it is); `kept`: the content-word
    sets of the questions kept so far."""
    words = question.split()
    if not question.endswith("?") or not 4 <= len(words) <= 40:
        return "not a question"
    if REFERS_TO_PASSAGE.search(question):
        return "refers to the passage"
    qwords = set(content_words(question))
    if len(qwords) < 2:
        return "trivial"
    if copies(question, passage_text):
        return "copies the passage"
    if len(qwords & set(content_words(passage_text))) / len(qwords) < MIN_COVERAGE:
        return "not answerable from the passage"
    if any(len(qwords & other) / len(qwords | other) >= DUPLICATE_JACCARD for other in kept):
        return "duplicate"
    return None


def extractive_answer(question: str, passage) -> str:
    """The passage's sentence sharing the most content words with the
    question, quoted and attributed, citing [1]."""
    qwords = set(content_words(question))
    sentences = [s.text for s in split_sentences(" ".join(passage.text.split()))] or [passage.text]
    best = max(sentences, key=lambda s: (len(qwords & set(content_words(s))), -abs(len(s.split()) - 25)))
    return f"{speaker(passage)} writes: “{best.strip()}” [1]"


def write_answer(question: str, passage, generator, checker) -> tuple[str, str]:
    """(response, how it was written): the model's answer as the check left
    it, or the extractive one when nothing of it survives."""
    from readingroom.answer.prompt import build_messages
    from readingroom.answer.check import check_answer

    if generator is not None:
        raw = generator.generate(build_messages(question, [passage]), max_tokens=ANSWER_TOKENS)
        checked = check_answer(raw, [passage], checker)
        if checked.supported and "[1]" in checked.text:
            return checked.text.strip(), "model, checked"
    return extractive_answer(question, passage), "extractive"


def build_questions(lib: Library, generator, n_passages: int = 50, *, seed: int = 0, model_answers: bool = True,
                    doc_ids=None, progress: bool = True) -> tuple[list[Example], BuildReport]:
    """Question-answer examples from `n_passages` random passages (see the module notes)."""
    from readingroom.answer.check import SupportChecker

    started = time.perf_counter()
    report = BuildReport()
    checker = SupportChecker(None)  # by words: no embedder needed to build a dataset
    kept_words: list[set] = []
    examples = []
    passages = sample_passages(lib, n_passages, seed=seed, doc_ids=doc_ids)
    for passage in tqdm(passages, desc="questions", unit="passage", disable=not progress):
        report.passages += 1
        text = " ".join(passage.text.split())
        question = clean_question(generator.generate(question_messages(text), max_tokens=QUESTION_TOKENS))
        reason = reject_reason(question, text, kept_words)
        if reason:
            report.rejected[reason] += 1
            continue
        kept_words.append(set(content_words(question)))
        response, how = write_answer(question, passage, generator if model_answers else None, checker)
        report.answers[how] += 1
        examples.append(Example(question, response, [source_of(passage)], {
            "kind": "question", "passage_id": passage.passage_id, "generator": generator.name, "answer": how}))
    report.kept = len(examples)
    report.seconds = time.perf_counter() - started
    return examples, report


def build_continuations(lib: Library, n_passages: int = 50, *, seed: int = 0, doc_ids=None) -> list[Example]:
    """Passage-continuation examples: the start of a passage, then the rest."""
    examples = []
    for passage in sample_passages(lib, n_passages, seed=seed, min_words=40, doc_ids=doc_ids):
        sentences = [s.text.strip() for s in split_sentences(" ".join(passage.text.split()))]
        if len(sentences) < 2:
            continue
        total = sum(len(s) for s in sentences)
        cut, length = 1, len(sentences[0])
        while cut < len(sentences) - 1 and length < total / 2:
            length += len(sentences[cut])
            cut += 1
        examples.append(Example(" ".join(sentences[:cut]), " ".join(sentences[cut:]), [source_of(passage)],
                                {"kind": "continuation", "passage_id": passage.passage_id}))
    return examples
