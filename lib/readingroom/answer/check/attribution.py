"""Whose claim a sentence states.

A supported sentence must say whose claim it is: it names an author
(surname), a collective author or a title of a passage it cites, or it
follows, in the same paragraph, a sentence attributed to the same author
("According to Engels, A [1]. B [1]." reads as Engels's A and B). Otherwise
the program prefixes "According to <author>, " (the author of the passage
that supports it best). This is deliberately simple: it never judges
whether a claim is true, only that it is presented as somebody's claim.
"""
from __future__ import annotations

import re

from readingroom.answer.check.citations import append_markers, cited_numbers, markers
from readingroom.corpus.document import name_list, split_authors

COLLECTIVE_WORDS = {"editorial", "collective", "committee", "editors", "team", "staff", "group", "board"}

# Words that can stand in a title or a broken author field but name nobody:
# an author field "The" or "Anonymous" gives no name, and a title "The"
# must not make every sentence with "the" in it count as attributed.
NOT_NAMES = {"the", "a", "an", "and", "of", "on", "in", "to", "for", "by", "with", "from", "at", "as", "or",
             "der", "die", "das", "und", "le", "la", "les", "de", "du", "des", "et", "el", "los", "y", "il",
             "anonymous", "unknown", "various", "editors", "editor", "et al", "et al."}


def _names_somebody(name: str) -> bool:
    return any(len(w.strip(".,;:'\"")) > 2 and w.lower().strip(".,;:'\"") not in NOT_NAMES for w in name.split())


def author_names(hit) -> list[str]:
    """The passage's authors, one name each ("A; B" in a single `author`
    string is two: corpus.document.split_authors); a field that names
    nobody ("The", "Anonymous", "A.") gives none."""
    names = split_authors(list(getattr(hit, "authors", None) or [])) or split_authors(getattr(hit, "author", ""))
    return [n for n in names if _names_somebody(n)]


def _collective(words: list[str]) -> bool:
    return any(w.lower() in COLLECTIVE_WORDS for w in words) or len(words) > 4


def speaker(hit) -> str:
    """How an answer names the author of a passage: a surname ("Engels"),
    two ("Marx and Engels"), a collective ("the Anarchist FAQ"), or the
    title when there is no author. A hit may name its speaker itself
    (`speaker_label`: a news item's outlet, "Reuters")."""
    if getattr(hit, "speaker_label", None):
        return hit.speaker_label
    names = author_names(hit)
    if not names:
        title = (getattr(hit, "title", "") or "the source").split(":")[0].strip()
        return f"“{title}”"
    return name_list([_name_label(n) for n in names])


def _name_label(name: str) -> str:
    words = name.split()
    if _collective(words):
        kept = [w for w in words if w.lower() not in COLLECTIVE_WORDS]
        return "the " + " ".join(kept or words)
    return words[-1]


def name_keys(hit) -> set[str]:
    """Lower-case strings whose presence in a sentence names this passage's
    author or work: surnames, full names, a collective's distinctive words,
    the title (before any colon)."""
    keys: set[str] = set()
    if getattr(hit, "speaker_label", None):
        label = hit.speaker_label.lower()
        keys |= {label, label.removeprefix("the ")}
    for name in author_names(hit):
        words = name.split()
        keys.add(name.lower())
        if _collective(words):
            keys |= {w.lower() for w in words if w.lower() not in COLLECTIVE_WORDS and len(w) >= 3}
        else:
            keys.add(words[-1].lower())
    title = (getattr(hit, "title", "") or "").strip()
    if title:
        keys.add(title.lower())
        main = title.split(":")[0].strip().lower()
        if len(main) >= 6:
            keys.add(main)
    # A key is a whole name or word: never a stop word or one or two letters.
    return {k for k in keys if len(k) > 2 and k not in NOT_NAMES}


def names_author(sentence: str, hits) -> bool:
    low = sentence.lower()
    for hit in hits:
        for key in name_keys(hit):
            if re.search(r"(?<!\w)" + re.escape(key) + r"(?!\w)", low):
                return True
    return False


_LOWERABLE = set("the a an this that these those it its there in on at for with by from as all some most many "
                 "each every no not one two three when while if after before during since because although "
                 "though however thus therefore so".split())


def with_attribution(sentence: str, who: str, context: str = "") -> str:
    """'The state is ... [1].' -> 'According to Engels, the state is ... [1].'
    The first word keeps its capital only when `context` (the cited
    passages) writes it with one in the middle of a sentence, as names are."""
    first, _, rest = sentence.partition(" ")
    word = re.sub(r"\W+$", "", first)
    lowered = first
    if word[:1].isupper() and word[1:].islower() and word != "I":
        # A name is written with its capital in the middle of sentences too;
        # a common word ("Historically") only at their start.
        is_name = re.search(r"[a-z,;]\s+" + re.escape(word) + r"\b", context) and word.lower() not in _LOWERABLE
        if not is_name:
            lowered = first[:1].lower() + first[1:]
    return f"According to {who}, {lowered}{(' ' + rest) if rest else ''}"


def attributed(sentence: str, hit, who: str) -> str:
    """`sentence`, resting on `hit`, naming its speaker `who` once: unchanged
    when it already names the passage's author or work (names_author), or
    when there is nobody to name."""
    if not who or names_author(sentence, [hit]):
        return sentence
    return with_attribution(sentence, who, getattr(hit, "text", ""))


# A sentence that opens by naming who says it: "Reagan argues that ...",
# "But Karl Marx wrote ...". Verbs in the singular: "Marxists argue" names a
# school, not a speaker a passage could be by.
_SAYS = (r"argues|argued|says|said|writes|wrote|claims|claimed|states|stated|believes|believed|holds|held|"
         r"maintains|maintained|contends|contended|asserts|asserted|insists|insisted|notes|noted|explains|"
         r"explained|thinks|thought|suggests|suggested|declares|declared|points\s+out|pointed\s+out|"
         # a stance is a claim about the speaker too: "Bush supports free trade [4]" over a FAQ passage
         r"supports|supported|opposes|opposed|favou?rs|favou?red|rejects|rejected|defends|defended|"
         r"praises|praised|criticises|criticised|criticizes|criticized|condemns|condemned|advocates|advocated|"
         r"calls\s+for|called\s+for|sees|saw|views|viewed|regards|regarded|considers|considered")
_NAMED_SPEAKER = re.compile(
    r"^(?:(?i:but|and|yet|so|thus|however|still|here|there),?\s+)?"
    r"(?P<name>[A-Z][\w'’.-]+(?:\s+(?:de|von|van|der|la|le)?\s*[A-Z][\w'’.-]+){0,2})"
    r"\s+(?:also\s+|further\s+|even\s+|rightly\s+|famously\s+)?(?:" + _SAYS + r")\b")
_NOT_SPEAKERS = _LOWERABLE | {"he", "she", "they", "we", "you", "i", "who", "which", "what", "one", "someone",
                              "everyone", "nobody", "author", "passage", "source", "text"}


def named_speaker(sentence: str) -> str | None:
    """The person a sentence names as saying it ("Reagan argues that ..." ->
    "Reagan"), or None when it names nobody that way ("He argues", "The
    author argues", "Marxists argue")."""
    m = _NAMED_SPEAKER.match(sentence.strip())
    if not m:
        return None
    name = re.split(r"['’]s\b", m.group("name"))[0]  # "Karl Marx's Capital argues": Marx is named
    words = [w for w in name.split() if w.lower().strip(".") not in _NOT_SPEAKERS]
    return " ".join(words) if words and words[-1][:1].isupper() else None


def misattributed(sentence: str, hits) -> str | None:
    """The speaker a sentence names when none of the passages it cites is by
    them, has them in its title or names them in its text: "Reagan argues
    that free markets fail workers [4]" over a passage of the Anarchist FAQ
    that never mentions Reagan puts the FAQ's words in Reagan's mouth,
    however well the words match; so does "According to the Anarchist FAQ,
    Baran argued ..." over a FAQ passage that never names Baran (the model
    names the passage's author, then someone else). None when the speaker
    checks out."""
    name = named_speaker(sentence) or named_speaker(without_own_sources(sentence))
    if name is None:
        return None
    surname = name.split()[-1].lower()
    for hit in hits:
        if names_author(name, [hit]) or any(surname == k or surname in k.split() for k in name_keys(hit)):
            return None
        if re.search(r"(?<!\w)" + re.escape(surname) + r"(?!\w)", (getattr(hit, "text", "") or "").lower()):
            return None
    return name


_OWN_SOURCE = re.compile(r"^according to (?P<source>[^,]{2,80}),\s*", re.IGNORECASE)


def without_own_sources(sentence: str) -> str:
    """The sentence after its openings "According to X," ("According to the
    FAQ, according to Marx, wages fall" -> "wages fall"); as it is when
    nothing would be left."""
    while (framed := own_source(sentence)) and framed[1].strip():
        sentence = framed[1].strip()
    return sentence


def own_source(sentence: str) -> tuple[str, str] | None:
    """(source, the rest) when the sentence opens by naming a source of its
    own: 'According to the ministry, output fell [1].' -> ('the ministry',
    'output fell [1].'); else None."""
    m = _OWN_SOURCE.match(sentence)
    return (m.group("source"), sentence[m.end():]) if m else None


# A sentence whose subject is a passage or its number: "The passage [2]
# states ...", "[1] and [2] argue ...", "Passages [1][3] show ...".
_SUBJECT_VERBS = (r"states?|says?|notes?|argues?|explains?|claims?|mentions?|describes?|adds?|suggests?|"
                  r"emphasi[sz]es|emphasi[sz]e|provides?|elaborates?|shows?|writes?|points?\s+out|highlights?|"
                  r"agrees?|contends?|maintains?|holds?")
_PASSAGE_SUBJECT = re.compile(
    r"^(?:(?:the\s+)?(?:passages?|sources?|texts?)\s*)?"
    r"(?P<numbers>\[\d{1,3}\](?:\s*(?:,|and|&)?\s*\[\d{1,3}\])*)\s*(?:both\s+)?(?:also\s+|further\s+)?"
    r"(?P<verb>" + _SUBJECT_VERBS + r")\b", re.IGNORECASE)


def _verb_for(verb: str, many: bool) -> str:
    """The verb agreeing with one speaker or several: "argue" -> "argues"."""
    head, _, tail = verb.lower().partition(" ")
    plural = not head.endswith("s")
    if many and not plural:
        head = head[:-1]
    elif not many and plural:
        head += "s"
    return f"{head} {tail}".strip()


_ACCORDING_TO_PASSAGE = re.compile(
    r"^according\s+to\s+(?:the\s+)?(?:given\s+|provided\s+)?(?:passages?|sources?|texts?)\s*((?:\[\d{1,3}\])*)\s*,\s*",
    re.IGNORECASE)


def name_the_passage(text: str, passages) -> str:
    """'The passage [2] states that ...' -> 'Engels states that ... [2]';
    '[1] and [3] argue that ...' -> 'Marx and the Anarchist FAQ argue that
    ... [1][3]'; 'According to the passage [2], ...' -> 'According to
    Engels, ... [2]' (not "According to Engels, according to the passage")."""
    m = _ACCORDING_TO_PASSAGE.match(text)
    if m:
        rest = text[m.end():]
        numbers = cited_numbers(m.group(1)) or cited_numbers(rest)
        if rest and numbers and all(1 <= n <= len(passages) for n in numbers):
            who = speaker(passages[numbers[0] - 1])
            return append_markers(f"According to {who}, {rest}", [n for n in numbers if markers([n]) not in rest])
        return text
    m = _PASSAGE_SUBJECT.match(text)
    if not m:
        return text
    numbers = cited_numbers(m.group("numbers"))
    if not numbers or not all(1 <= n <= len(passages) for n in numbers):
        return text
    speakers = list(dict.fromkeys(speaker(passages[n - 1]) for n in numbers))
    who = name_list(speakers)
    rest = text[m.end():]
    named = f"{who[:1].upper()}{who[1:]} {_verb_for(m.group('verb'), len(speakers) > 1)}{rest}"
    return append_markers(named, [n for n in numbers if markers([n]) not in rest])
