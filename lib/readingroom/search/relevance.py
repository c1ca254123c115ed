"""Whether the library holds something close enough to a question: the gate.

Fused RRF scores cannot be thresholded (they only rank), so the gate scores
the best passages itself:

    strength = GATE_COSINE_WEIGHT * cosine + (1 - GATE_COSINE_WEIGHT) * coverage

- cosine: the question against the passage under the library's embedder;
- coverage: the IDF-weighted share of the question's content words that
  occur in the passage (a word the whole library never uses, such as a
  name it does not know, weighs the most).

Below GATE_THRESHOLD for every passage retrieved, the question is taken to
be one the library cannot answer (readingroom.answer asks no model then;
news keeps no related passage). Calibrated with MiniLM vectors on the
Marx-Engels library, top 5 passages: with the weight 0.5 and the threshold
0.35, 73 of the 77 questions of data/benchmarks/marx-engels.jsonl pass (95%)
and 21 of the 25 of data/benchmarks/unanswerable.jsonl are stopped (84%). On
the default library (Anarchist FAQ and State of the Union addresses), not
used to choose them, 17 of the 25 unanswerable questions are stopped (68%)
and 60 of 60 sampled FAQ questions pass. Cosine alone did worse at every
threshold (at 0.45: 91% pass, 80% and 64% stopped). (The words of the
question the library never uses are reported too; a rule on them caught
one more question of 50 and failed on small libraries, whose vocabulary
lacks common words, so it is not used.)

A question about someone the library never mentions is one it cannot
answer, however close it is in other words: "What did Bortkiewicz object to
in Marx's solution?" finds passages on Marx and prices, and a model given
them writes about Marx. `unknown_names` lists the names a question uses
(words written with a capital inside a sentence, in languages that
capitalise names and little else) that the library never uses, and the
answer's gate stops on them (answer.pipeline; not on a question searched
in translation, whose names the model may write as the other language
does: "Frederick", "Friedrich"). Measured by
bench/gate_names.py. The library, not the passages found: a name the
library holds but the best five passages lack is most often a common one
("Britain", "February", "the Manifesto") beside the question's point; a
rule on the passages stopped 87% of the near-domain questions but 12% of
the answerable Marx-Engels ones.

`passages_for` picks the passages an answer is given: the best k, but not
all from one author when another author also speaks to the question.
"""
from __future__ import annotations

import bisect
import dataclasses
import math
import re
from collections.abc import Callable

import numpy as np
from rapidfuzz.distance import Levenshtein

from readingroom.search.searcher import Filters
from readingroom.text import (content_words, folded, sentence_spans, stemmer, stop_words, token_tag,
                              word_language)

# Measured on the Marx-Engels benchmark (see the module notes).
GATE_COSINE_WEIGHT = 0.5
GATE_THRESHOLD = 0.35
OTHER_SIDE_SHARE = 0.75  # another author's passage joins a one-author list at this share of the best's strength


def passage_vectors(searcher, hits) -> np.ndarray | None:
    """The hits' vectors under the searcher's embedder: stored ones where the
    index has them, else encoded now. None without an embedder."""
    index = searcher.index
    if index.embedder is None or not hits:
        return None
    rows = [index.row_of.get(h.passage_id) for h in hits]
    if index.vectors is not None and all(r is not None and index.has_vector[r] for r in rows):
        return np.asarray(index.vector_of(np.array(rows, dtype=np.int64)), dtype=np.float32)
    return index.embedder.encode_documents([h.text for h in hits])


def word_idf(searcher) -> Callable[[str], float]:
    """IDF of a stemmed word in the library's BM25 index (tagged with its
    language as the index tags it: text.token_tag); a word the library
    never uses gets the highest IDF there is. A word's document frequency is
    the number of passages BM25 scores above zero for it alone (bm25s's
    public `get_scores`: every passage that contains a word scores above
    zero for it, and no other passage does)."""
    bm25 = searcher.index.bm25
    vocab = getattr(bm25, "vocab_dict", None) or {}
    total = len(searcher.index)
    known: dict[str, int] = {}

    def idf(word: str) -> float:
        if word not in known:
            known[word] = int(np.count_nonzero(bm25.get_scores([word]))) if word in vocab and total else 0
        df = known[word]
        return math.log(1 + (total - df + 0.5) / (df + 0.5))

    return idf


def retrieval_evidence(searcher, question: str, hits, language: str | None = ...) -> dict:
    """How strongly the retrieved passages match the question (see the
    module notes): per passage cosine, coverage and strength, and the best.

    Coverage reads the question in each passage's language, with that
    language's stemmer and stop words and its words' IDF (the index tags
    them: text.token_tag), so a German question over a German passage is
    covered by "Staat" matching "Staaten"; an English passage is read as
    before, which keeps the gate as it was calibrated on English. The
    words the library never uses are those of the question read in its
    own `language` (detected when not given; English when it cannot be
    told)."""
    if not hits:
        return {"strength": 0.0, "cosine": None, "coverage": 0.0, "unknown_words": [], "unknown_share": 0.0,
                "passages": []}
    if language is ...:
        language = searcher.query_language(question)
    idf = word_idf(searcher)
    readings: dict[str, tuple[str, dict[str, float], float]] = {}

    def reading(code: str | None) -> tuple[str, dict[str, float], float]:
        """(tag, IDF weight of each content word, their sum): the question read in `code`."""
        code = word_language(code)
        if code not in readings:
            tag = token_tag(code)
            weights = {w: idf(tag + w) for w in dict.fromkeys(content_words(question, code))}
            readings[code] = tag, weights, sum(weights.values())
        return readings[code]

    tag, weights, total = reading(language)
    vocab = getattr(searcher.index.bm25, "vocab_dict", None) or {}
    unknown = [w for w in weights if tag + w not in vocab]
    unknown_share = sum(weights[w] for w in unknown) / total if total else 0.0
    coverage = []
    for h in hits:
        _, passage_weights, passage_total = reading(h.language)
        present = set(content_words(h.text, h.language))
        coverage.append(sum(v for w, v in passage_weights.items() if w in present) / passage_total
                        if passage_total else 0.0)
    cosines = None
    vectors = passage_vectors(searcher, hits)
    if vectors is not None:
        q = searcher.index.embedder.encode_query(question)
        cosines = [float(x) for x in vectors @ q]
        strengths = [GATE_COSINE_WEIGHT * c + (1 - GATE_COSINE_WEIGHT) * v for c, v in zip(cosines, coverage)]
    else:
        strengths = list(coverage)
    best = int(np.argmax(strengths))
    return {
        "strength": round(float(strengths[best]), 4),
        "cosine": None if cosines is None else round(cosines[best], 4),
        "coverage": round(float(coverage[best]), 4),
        "best": best + 1,
        "unknown_words": unknown,
        "unknown_share": round(unknown_share, 4),
        "passages": [{"n": n, "cosine": None if cosines is None else round(cosines[n - 1], 4),
                      "coverage": round(coverage[n - 1], 4), "strength": round(strengths[n - 1], 4)}
                     for n in range(1, len(hits) + 1)],
    }


# Languages that write names, and few other words, with a capital inside a
# sentence. German capitalises every noun, so its questions are not read for names.
NAME_CASE_LANGUAGES = frozenset({"en", "fr", "es", "it", "pt", "nl", "ru", "sv", "da"})
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_LETTERS = re.compile(r"[^\W\d_]+")  # a passage's words, hyphenated ones in parts ("Anti-Dühring")
_OPENS_QUOTE = (":", '"', "“", "«", "‘", "„", "(")


def question_names(question: str, language: str | None) -> list[str]:
    """The names a question uses, as written: words with a capital that do
    not open a sentence, a quotation or a parenthesis, and are not stop
    words, adjacent ones taken together ("What did Thomas Müntzer's rising
    achieve, and what did Bortkiewicz write?" -> ["Thomas Müntzer",
    "Bortkiewicz"]); a possessive's "'s" ends a name and a French elision's
    "l'" comes off. None in a language that capitalises more than names
    (see NAME_CASE_LANGUAGES), and none in a question written in capitals
    or Title Case, which its stop words show ("What Did ...": a stop word is
    never a name)."""
    language = word_language(language)
    if language not in NAME_CASE_LANGUAGES:
        return []
    stops = set(stop_words(language))
    names: list[str] = []
    inner_stops = capital_stops = inner_words = shouted = 0
    for start, end in sentence_spans(question):
        sentence = question[start:end]
        group_end = None  # where the name being read ends, while the next word may continue it
        for i, match in enumerate(_WORD.finditer(sentence)):
            word = match.group()
            if i == 0 or sentence[:match.start()].rstrip().endswith(_OPENS_QUOTE):
                group_end = None
                continue
            inner_words += 1
            shouted += len(word) > 1 and word.isupper()
            if word.lower() in stops:
                inner_stops += 1
                capital_stops += word[:1].isupper()
                group_end = None
                continue
            before, _, after = word.replace("’", "'").partition("'")
            elided = bool(after) and len(before) <= 2 and before.islower()  # l'État
            name = after if elided else before  # Marx's -> Marx
            if len(name) < 2 or not name[:1].isupper():
                group_end = None
                continue
            if group_end is not None and not sentence[group_end:match.start()].strip():
                names[-1] += " " + name
            else:
                names.append(name)
            group_end = None if after and not elided else match.end()  # a possessive ends the name
    if capital_stops * 2 > inner_stops or shouted * 2 > inner_words:
        return []
    return list(dict.fromkeys(names))


def _is_known(key: str, words: list[str]) -> bool:
    """Whether a sorted list of folded words holds one that begins with
    `key`, or, for a key of five letters or more, one spelt one letter apart
    with the same first two and last letters ("Tatar" and "Tartar",
    "Frankfurt" and "Frankfort", "Habsburg" and "Hapsburg": old texts and
    translations spell names their own way; "Adorno" is not "adorn")."""
    at = bisect.bisect_left(words, key)
    if at < len(words) and words[at].startswith(key):
        return True
    if len(key) < 5:
        return False
    at = bisect.bisect_left(words, key[:2])
    while at < len(words) and words[at].startswith(key[:2]):
        word = words[at]
        at += 1
        # The whole word: a word's beginning a letter off is too loose ("Weston", "Westinghouse").
        if word[-1] == key[-1] and abs(len(word) - len(key)) <= 1 \
                and Levenshtein.distance(word, key, score_cutoff=1) <= 1:
            return True
    return False


def unknown_names(searcher, question: str, language: str | None, hits=()) -> list[str]:
    """The question's names (question_names) that the library never uses:
    for some word of the name, no word of the library's passages (in any
    language) or of its authors' names begins with that word's stem in
    `language` ("Marx's" -> "marx", Russian "Маркса" -> "маркс"), none is
    spelt a letter apart (_is_known), accents aside, and none of `hits`
    has it in its title, author or text. Each word, because "Eleanor Marx"
    is not Marx (so "Mikhail Bakunin" is unknown to a library that writes
    "Michael": the reader is told which name)."""
    names = question_names(question, language)
    if not names:
        return []
    stem = stemmer(word_language(language)).stemWord
    library = searcher.index.known_words()
    # The hits' words as written and stemmed, as the index holds its own; a few hundred, sorted apart.
    written = {w.lower() for h in hits for w in _LETTERS.findall(" ".join([h.text, h.title or "", h.author or ""]))}
    found = sorted({folded(w) for w in written} | {folded(stem(w)) for w in written})

    def known(word: str) -> bool:
        key = folded(stem(word.lower()))
        return _is_known(key, library) or _is_known(key, found)

    return [name for name in names if not all(known(word) for word in _LETTERS.findall(name))]


_BODIES = {"editorial", "collective", "committee", "editors", "team", "staff", "group", "board", "party", "society"}


def named_authors(question: str, docs) -> list[str]:
    """The surnames of the library's authors that the question names, as
    written with a capital and as whole words ("What do Reagan and the
    anarchists say ..." -> ["Reagan"]); collectives and short or common
    words are not names a question would use."""
    surnames = set()
    for names in docs.authors:
        for name in names or ():
            words = name.replace(",", " ").split()
            if len(words) < 2 or len(words) > 4 or any(w.lower() in _BODIES or w.isupper() for w in words):
                continue  # one word, or a body ("Anarchist FAQ Editorial Collective")
            surname = words[-1] if "," not in name else name.split(",")[0].strip()
            if len(surname) >= 4 and surname[:1].isupper() and surname.isalpha():
                surnames.add(surname)
    found = set(re.findall(r"\b[A-Z][\w'’-]+\b", question))
    return sorted(surnames & {w.split("'")[0].split("’")[0] for w in found})


def passages_for(searcher, question: str, k: int, filters, threshold: float = GATE_THRESHOLD) -> list:
    """The best k passages, but not all from one author when another author
    also speaks to the question: if the best k share their authors, the last
    is replaced by the best passage of the library's other authors, provided
    it passes the gate and reaches OTHER_SIDE_SHARE of the best's strength. Search ranks by closeness
    to the question, so one voluminous author (the FAQ) can fill every slot,
    and a contested question would never show the other side.
    An author the question names ("What does Reagan say ...") is given
    their best passage on it, if it passes the gate, in place of the last of
    the most repeated author's."""
    hits = searcher.search(question, k, filters)
    if k >= 2 and hits:
        hits = _with_named_authors(searcher, question, hits, filters, threshold)
    if k < 2 or len(hits) < k or len({tuple(h.authors or ()) for h in hits}) > 1:
        return hits
    docs = searcher.index.docs
    first = set(hits[0].authors or ())
    others = [d for d, names in zip(docs.doc_ids.tolist(), docs.authors) if set(names or ()) != first]
    filters = filters or Filters()
    if filters.doc_ids:
        others = [d for d in others if d in set(filters.doc_ids)]
    if not others:
        return hits
    candidates = searcher.search(question, 3, dataclasses.replace(filters, doc_ids=tuple(others)))
    if not candidates:
        return hits
    # Strong enough: past the gate, and near the best passage's strength, so
    # that a passage merely by someone else is not taken for the other side.
    # Strengths do not depend on the question's language (coverage reads it
    # in each passage's), so it is not detected here (None).
    wanted = max(threshold, OTHER_SIDE_SHARE * retrieval_evidence(searcher, question, hits, None)["strength"])
    for hit, strength in zip(candidates, retrieval_evidence(searcher, question, candidates, None)["passages"]):
        if strength["strength"] >= wanted:
            return hits[:-1] + [hit]
    return hits


def _with_named_authors(searcher, question: str, hits: list, filters, threshold: float) -> list:
    hits = list(hits)
    if filters and filters.authors:  # the reader chose whose passages to read
        return hits
    for surname in named_authors(question, searcher.index.docs)[: len(hits) - 1]:
        if any(surname in (h.author or "") for h in hits):
            continue
        theirs = searcher.search(question, 1, dataclasses.replace(filters or Filters(), authors=(surname,)))
        if not theirs or retrieval_evidence(searcher, question, theirs, None)["strength"] < threshold:
            continue
        counts = {}
        for h in hits:
            counts[h.author] = counts.get(h.author, 0) + 1
        most = max(counts, key=counts.get)
        last = max(i for i, h in enumerate(hits) if h.author == most)
        hits = hits[:last] + hits[last + 1:] + theirs
    return hits


__all__ = ["GATE_COSINE_WEIGHT", "GATE_THRESHOLD", "OTHER_SIDE_SHARE", "passage_vectors", "word_idf",
           "retrieval_evidence", "question_names", "unknown_names", "named_authors", "passages_for"]
