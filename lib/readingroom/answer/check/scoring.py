"""The support score of a sentence by a passage.

    support = LEXICAL_WEIGHT * lexical + (1 - LEXICAL_WEIGHT) * cosine

- lexical: the share of the sentence's content words (readingroom.text:
  lower case, stop words and question words out, Snowball-stemmed, so
  "states" matches "state") that occur in the passage. It is high when a
  sentence restates or quotes the passage, low when it adds words of its
  own.
- cosine: the cosine between the sentence and the passage under the
  library's embedder (the passage's stored vector where there is one).
  It credits paraphrase that shares few words.

A sentence is supported when its score reaches SUPPORT_THRESHOLD and it has
at least MIN_CLAIM_WORDS content words (so "PWNED [1]", copied from an
injected passage, is no claim). When the sentence is in another language
than the passage, the lexical part means nothing and the cosine alone is
used (a multilingual embedder is needed for that to work; with MiniLM such
sentences rarely pass). Measured on the claim sentences of
Qwen2.5-Coder-1.5B and SmolLM2 answers to a sample of the Marx-Engels
benchmark (15 answerable and 10 unanswerable questions, MiniLM vectors):
- each sentence scored against a passage given for another question (a
  claim that passage cannot support): 0 of 46 reach 0.50 with the 50/50 mix
  (2 of 46 reach 0.45); the words alone or the cosine alone separate the
  cited from the swapped passage no better (AUC 0.84 either way, 0.85
  mixed), but the mix needs both: a sentence on the right topic in other
  words (cosine ~0.55, lexical ~0.3) stays below 0.5;
- read by hand, of the 9 sentences of Qwen's answers that passed, 7 say what
  the cited passage says, 1 half (the passage's words, put to the question's
  frame) and 1 not (a passage's words recombined into a claim it does not
  make); every sentence that failed was uncited, cited a passage that does
  not say it, or (once) said something true of another passage than the one
  it cited.
"""
from __future__ import annotations

import numpy as np

from readingroom.answer.check.citations import strip_citations
from readingroom.text import content_words, sentence_spans, shorten, word_language

# Measured on Qwen2.5-Coder-1.5B and SmolLM2 answers (see module notes).
LEXICAL_WEIGHT = 0.5
SUPPORT_THRESHOLD = 0.50
MIN_CLAIM_WORDS = 3  # content words a sentence needs to count as a supported claim
FOUND_THRESHOLD = 0.60  # support a sentence that cites nothing needs for the program to cite for it


def lexical_overlap(sentence_words: list[str], passage_words: set[str]) -> float:
    """The share of the sentence's distinct content words found in the passage."""
    words = set(sentence_words)
    if not words:
        return 0.0
    return len(words & passage_words) / len(words)


class SupportChecker:
    """Scores sentences against passages; see the module notes.

    `embedder`: the library's embedder (search.Searcher.index.embedder);
    None scores by words alone (then the lexical share is the score)."""

    def __init__(self, embedder=None, *, threshold: float = SUPPORT_THRESHOLD,
                 lexical_weight: float = LEXICAL_WEIGHT, min_claim_words: int = MIN_CLAIM_WORDS):
        self.embedder = embedder
        self.threshold = threshold
        self.lexical_weight = lexical_weight
        self.min_claim_words = min_claim_words

    def scores(self, sentences: list[str], passages: list[str], passage_vectors: np.ndarray | None = None,
               cross_language: np.ndarray | None = None, passage_languages: list[str | None] | None = None):
        """(lexical, cosine, combined) matrices, sentences x passages.
        `cross_language[i, j]`: sentence i is in another language than
        passage j (the cosine alone counts there). `passage_languages`:
        each passage's language (None: English); a sentence's words are
        compared with a passage's in that passage's language, its stop
        words and stemmer (text.content_words)."""
        n, m = len(sentences), len(passages)
        languages = [word_language(c) for c in passage_languages] if passage_languages else ["en"] * m
        lexical = np.zeros((n, m))
        passage_words = [set(content_words(p, lang)) for p, lang in zip(passages, languages)]
        for i, s in enumerate(sentences):
            words = {lang: content_words(s, lang) for lang in set(languages)}
            for j in range(m):
                lexical[i, j] = lexical_overlap(words[languages[j]], passage_words[j])
        if self.embedder is None or n == 0 or m == 0:
            cosine = np.zeros((n, m))
            combined = lexical.copy()
        else:
            sv = self.embedder.encode_documents([strip_citations(s) for s in sentences])
            pv = passage_vectors if passage_vectors is not None else self.embedder.encode_documents(passages)
            cosine = np.clip(sv @ np.asarray(pv, dtype=np.float32).T, 0.0, 1.0)
            combined = self.lexical_weight * lexical + (1 - self.lexical_weight) * cosine
        if cross_language is not None and self.embedder is not None:
            combined = np.where(cross_language, cosine, combined)
        return lexical, cosine, combined

    def score(self, sentence: str, passage: str) -> float:
        """The support score of one sentence by one passage."""
        return float(self.scores([sentence], [passage])[2][0, 0])


def best_sentence(text: str, sentences: list[str], language: str | None = None) -> tuple[int, int] | None:
    """The span of `text`'s sentence that shares most content words with
    `sentences` (the first such; the first sentence when none share any);
    words read in `language`. None: `text` holds no sentence."""
    spans = sentence_spans(text)
    if not spans:
        return None
    wanted = set()
    for s in sentences:
        wanted |= set(content_words(s, language))
    if not wanted:
        return spans[0]
    shared = [len(wanted & set(content_words(text[start:end], language))) for start, end in spans]
    return spans[shared.index(max(shared))]


def best_quote(passage_text: str, sentences: list[str], limit: int = 300, language: str | None = None) -> str:
    """The sentence of the passage that shares most content words with the
    sentences citing it (the passage's opening when none do), cut to `limit`;
    words read in the passage's `language`."""
    text = " ".join(passage_text.split())
    span = best_sentence(text, sentences, language)
    return shorten(text[span[0]:span[1]], limit) if span else ""
