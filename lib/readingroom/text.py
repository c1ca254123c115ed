"""Plain-text operations shared by every stage: sentences, shortening,
content words. Imports nothing of readingroom's own, so corpus, search,
answer and news can all use it.

- `sentence_spans`: the one sentence splitter, as (start, end) character
  spans, so a caller can keep exact offsets (passages) or take the text.
  A sentence ends at . ! ? or … (closing quotes and brackets after it go
  with it), followed by space and something that can start a sentence: an
  upper-case letter or a letter of a script without case, a digit, an
  opening quote or bracket, "¿" or "¡". A period after an abbreviation
  ("Dr.", "e.g.", "vol.") or an initial ("J. S. Mill") ends nothing; a
  lower-case word after a period ends nothing either ("1. the first").
  With `join_quotes`, a sentence that opens a quotation it does not close
  is joined with the next ones, up to the one that closes it.
- `ends_sentence`: whether a line ends as a sentence does (PDF readers
  use it to find the last line of a paragraph).
- `shorten`: text cut at a word to a number of characters, with " …".
- `folded`: lower case without accents, for matching names.
- `defuse_tags`: untrusted text that cannot open or close a prompt's tags.
- `tokenize`, `stemmer`, `content_words`: the words that carry content,
  as the BM25 index sees them (lower case, stop words out, Snowball-stemmed),
  and without the words of questions and reporting ("what", "argues").
"""
from __future__ import annotations

import functools
import re
import unicodedata

# --- sentences ----------------------------------------------------------------------

SENTENCE_MARKS = ".!?…"
CLOSERS = "\"'”’»)]"
SENTENCE_END_RE = re.compile(r"([.!?…]+[\"'”’»)\]]*)\s+(?=[\"'“‘«(\[¿¡]*[^\W_a-z])")
_LINE_END_RE = re.compile(r"[.!?…]+[\"'”’»)\]]*$")
# Words after which a period does not end a sentence (English, German,
# French, Spanish and Italian usage), written without their last period.
ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof st mt sr jr vol vols p pp ch chap cf e.g i.e etc
    no nos ed eds trans fig op cit ibid viz vs esp approx dept gen gov col capt
    lt rev hon jan feb mar apr jun jul aug sep sept oct nov dec""".split()
)


def sentence_spans(text: str, *, join_quotes: bool = False) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, trailing space excluded; see
    the module notes."""
    spans, start = [], 0
    for m in SENTENCE_END_RE.finditer(text):
        mark = m.start()
        if text[mark] == ".":
            # The word before the period: an abbreviation or an initial ("J. S.
            # Mill") does not end the sentence.
            word = text[max(start, mark - 12): mark].rsplit(None, 1)[-1:] or [""]
            word = word[0].lstrip("([\"'“‘").lower()
            if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
                continue
        spans.append((start, m.end(1)))  # the marks and closers, without the space after them
        start = m.end()
    if start < len(text):
        end = len(text.rstrip())
        if end > start:
            spans.append((start, end))
    if join_quotes and spans:
        joined = _join_open_quotes(text, spans)
        # A quotation never closed is no quotation at all: the plain split stands.
        if not opens_quote(text[joined[-1][0]:joined[-1][1]]):
            spans = joined
    return spans


def _join_open_quotes(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    joined: list[tuple[int, int]] = []
    for start, end in spans:
        if joined and opens_quote(text[joined[-1][0]:joined[-1][1]]):
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return joined


def opens_quote(text: str) -> bool:
    """Whether `text` opens a quotation it does not close."""
    return text.count("“") > text.count("”") or text.count('"') % 2 == 1 or text.count("«") > text.count("»")


def sentences(text: str, *, join_quotes: bool = False) -> list[str]:
    """The sentences of `text`, each with its runs of space collapsed."""
    return [" ".join(text[s:e].split()) for s, e in sentence_spans(text, join_quotes=join_quotes)]


def ends_sentence(line: str, *, colon: bool = False) -> bool:
    """Whether `line` ends with a sentence's last mark (and any closing
    quotes or brackets); with `colon`, a colon counts too."""
    line = line.rstrip()
    if colon and re.search(r":[\"'”’»)\]]*$", line):
        return True
    return bool(_LINE_END_RE.search(line))


# --- shortening ----------------------------------------------------------------------

def folded(text: str) -> str:
    """Lower case without accents ("Lukács" -> "lukacs"), for matching names
    however they were typed."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def shorten(text: str, limit: int, ellipsis: str = " …") -> str:
    """`text` when it has at most `limit` characters, else cut at the last
    word boundary before `limit`, with `ellipsis` after it."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + ellipsis


# --- untrusted text inside a prompt's tags -------------------------------------------

# The tags of the chat templates our models use, which a text must not open
# or close whatever prompt it goes into.
_CHAT_TAGS = ("system", "user", "assistant", "im_start", "im_end")


@functools.lru_cache(maxsize=16)
def _tag_lookalike(tags: tuple[str, ...]) -> re.Pattern:
    names = "|".join(map(re.escape, tags + _CHAT_TAGS))
    return re.compile(rf"<(?=\s*/?\s*(?:{names})\b)|<(?=\|)", re.IGNORECASE)


def defuse_tags(text: str, tags: tuple[str, ...] = ()) -> str:
    """Untrusted text made safe to put between a prompt's tags: a "<" that
    would open or close one of `tags` or a chat template's role tag, or
    begin a special token such as "<|im_end|>", becomes "‹"."""
    return _tag_lookalike(tuple(tags)).sub("‹", text)


# --- words ---------------------------------------------------------------------------

# Snowball stemmers by language code; bm25s has stop word lists for these.
_SNOWBALL = {"en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian",
             "pt": "portuguese", "nl": "dutch", "ru": "russian", "sv": "swedish", "da": "danish"}


def word_language(language: str | None) -> str:
    """The language whose stop words and stemmer apply to a text in
    `language`: itself when it has both, else English (as every text was
    treated before texts had languages: unknown ones stay so)."""
    return language if language in _SNOWBALL else "en"
_STEMMERS: dict[str, object] = {}


def stemmer(language: str = "en"):
    """The Snowball stemmer (PyStemmer) of `language`, made once."""
    if language not in _SNOWBALL:
        raise ValueError(f"no stemmer for the language {language!r}; known: {', '.join(sorted(_SNOWBALL))}")
    if language not in _STEMMERS:
        import Stemmer

        _STEMMERS[language] = Stemmer.Stemmer(_SNOWBALL[language])
    return _STEMMERS[language]


_STOP_WORD_LISTS = {"en": "STOPWORDS_EN", "de": "STOPWORDS_GERMAN", "fr": "STOPWORDS_FRENCH",
                    "es": "STOPWORDS_SPANISH", "it": "STOPWORDS_ITALIAN", "pt": "STOPWORDS_PORTUGUESE",
                    "nl": "STOPWORDS_DUTCH", "ru": "STOPWORDS_RUSSIAN", "sv": "STOPWORDS_SWEDISH",
                    "da": "STOPWORDS_DANISH"}


def stop_words(language: str | None) -> list[str]:
    """bm25s's stop words of a language (NLTK's lists), as `tokenize` drops
    them; English's for a language without a stemmer."""
    import bm25s.stopwords

    return list(getattr(bm25s.stopwords, _STOP_WORD_LISTS[word_language(language)]))


def tokenize(texts: list[str], language: str = "en", *, drop_stop_words: bool = True):
    """bm25s tokens: lower case, stop words out, Snowball-stemmed (PyStemmer),
    so that "states" finds "state" (and in German "Staaten" "Staat"), with
    `language`'s stop words and stemmer. One list of strings per text."""
    import bm25s

    return bm25s.tokenize(texts, stopwords=language if drop_stop_words else None, stemmer=stemmer(language),
                          show_progress=False, return_ids=False)


def token_tag(language: str | None) -> str:
    """What the BM25 index puts before the tokens of a text in `language`:
    nothing for English (and languages read as English), so an English
    library's index is what it always was; "de:" for German, and so on. A
    token never holds ":" (bm25s's words are letters, digits and "_"), so a
    tagged token matches only passages of its language: German "die" and
    English "die", or "art" in French and in English, stay apart."""
    language = word_language(language)
    return "" if language == "en" else language + ":"


# The languages whose stop words BM25 drops. English, as it always has; in
# other languages BM25 keeps them (IDF weighs them down anyway): on German
# questions over fortunes-de (bench/bm25_languages.py) dropping NLTK's German
# stop words lost more than it won (R@1 0.675, MRR@10 0.734 with them; 0.775
# and 0.812 without). The checker's content words drop them in every language.
BM25_STOP_WORD_LANGUAGES = {"en"}


def index_tokens(texts: list[str], language: str | None) -> list[list[str]]:
    """The BM25 tokens of texts in `language`: `tokenize` with its stemmer
    (and its stop words dropped where BM25_STOP_WORD_LANGUAGES says),
    tagged with `token_tag`."""
    tag = token_tag(language)
    language = word_language(language)
    tokens = tokenize(texts, language, drop_stop_words=language in BM25_STOP_WORD_LANGUAGES)
    return tokens if not tag else [[tag + t for t in words] for words in tokens]


# Words of questions and of reporting that say nothing about content; left
# out of the content words (on top of bm25s's English stop words).
FRAME_WORDS = (
    "what which who whom whose why how when where did does do done doing say says said saying according "
    "argue argues argued arguing claim claims claimed state states stated write writes wrote written "
    "describe describes described explain explains explained passage passages source sources text texts "
    "author authors also would could should can may might must shall has have had was were been being "
    "about we you your our i me my he she his her him its it they them their there here one ones "
    "so than too very just only also from up out over under more most other some any each both all "
    "between through because while since until whether same own"
).split()

# A bracketed reference: "[1]", "[1, 2]", "[2-4]", "[Passage 2]", "[^3]". Its
# numbers are no content (an answer's citation markers, a text's footnotes).
REFERENCE_MARKER = re.compile(
    r"\[\s*(?:(?:passage|source|doc|document|p)\.?\s*|\^)?"
    r"(\d{1,3}(?:\s*(?:,|;|–|-|and|&)\s*(?:(?:passage|source)\s*)?\d{1,3})*)\s*\]",
    re.IGNORECASE)

_FRAME_STEMS: dict[str, set[str]] = {}


def content_words(text: str, language: str | None = "en") -> list[str]:
    """The stemmed content words of `text`, in order: bm25s tokens of
    `language` (its stop words out, its stemmer) without bracketed
    references and, in English, without question and reporting words.
    Numbers of three digits or more (years) are content; shorter ones
    mostly not. A language without a stemmer is read as English."""
    language = word_language(language)
    if language not in _FRAME_STEMS:
        frame = FRAME_WORDS if language == "en" else []
        _FRAME_STEMS[language] = set(stemmer(language).stemWords(frame)) | set(frame)
    frame_stems = _FRAME_STEMS[language]
    text = REFERENCE_MARKER.sub(" ", text)
    words = []
    for t in tokenize([text], language)[0]:
        if t.isdigit():
            if len(t) >= 3:
                words.append(t)
        elif t and t not in frame_stems:
            words.append(t)
    return words


__all__ = ["sentence_spans", "sentences", "opens_quote", "ends_sentence", "shorten", "stemmer", "tokenize", "word_language", "token_tag", "index_tokens", "stop_words",
           "BM25_STOP_WORD_LANGUAGES",
           "content_words", "FRAME_WORDS", "REFERENCE_MARKER", "ABBREVIATIONS"]
