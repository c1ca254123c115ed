"""Follow-up questions: a question asked after earlier turns is rewritten
into one that stands alone before it is searched, by the generator; when
its rewrite is empty, long, or drops the follow-up's own words, the previous
question's key words are appended instead (`fallback_rewrite`)."""
from __future__ import annotations

import re

from readingroom.answer.render import body_text
from readingroom.text import content_words

REWRITE_TOKENS = 64
REWRITE_PROMPT = """Rewrite the follow-up question so that it can be understood without the conversation: replace pronouns and vague words with what they refer to. Reply with the rewritten question only, on one line."""


def history_messages(history) -> list[dict]:
    """Earlier turns as chat messages; Answers (anything with a `question`
    and a checked `body`) become a question and what the answer said."""
    turns: list[dict] = []
    for item in history or ():
        if hasattr(item, "question") and hasattr(item, "body"):
            turns.append({"role": "user", "content": item.question})
            turns.append({"role": "assistant", "content": body_text(item)})
        elif isinstance(item, dict) and item.get("role") in ("user", "assistant") and isinstance(item.get("content"), str):
            turns.append({"role": item["role"], "content": item["content"]})
        elif isinstance(item, str):
            turns.append({"role": "user", "content": item})
    return turns


def previous_question(turns: list[dict]) -> str | None:
    return next((t["content"] for t in reversed(turns) if t["role"] == "user" and t["content"].strip()), None)


_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)


def key_terms(text: str, limit: int = 8) -> list[str]:
    """The words of `text` that carry its content, as written (not stemmed)."""
    terms: list[str] = []
    for word in _WORD.findall(text):
        if content_words(word) and word.lower() not in (t.lower() for t in terms):
            terms.append(word)
    return terms[:limit]


def fallback_rewrite(question: str, turns: list[dict]) -> str:
    """The follow-up with the previous question's key words it lacks appended."""
    previous = previous_question(turns)
    if not previous:
        return question
    have = set(content_words(question))
    extra = [t for t in key_terms(previous) if not set(content_words(t)) <= have]
    return f"{question} ({' '.join(extra)})" if extra else question


def good_rewrite(rewrite: str, question: str, turns: list[dict]) -> bool:
    """Whether a model's rewrite can be searched instead of the follow-up:
    one line, not empty or rambling, no citation markers or tags; it keeps
    at least half of the follow-up's own content words and adds at least one
    from the conversation."""
    if not rewrite or "\n" in rewrite.strip() or len(rewrite.split()) > max(40, 3 * len(question.split())):
        return False
    if re.search(r"\[\d|<", rewrite):
        return False
    own = set(content_words(question))
    got = set(content_words(rewrite))
    if not got:
        return False
    if own and len(own & got) < max(1, len(own) // 2):
        return False
    # It must bring something of the conversation in, or it is no rewrite.
    earlier = set()
    for t in turns:
        earlier |= set(content_words(t["content"]))
    return bool((got - own) & earlier) or not (earlier - own)


def rewrite_question(question: str, turns: list[dict], generator) -> tuple[str, str]:
    """(the question made to stand alone, "model" or "fallback")."""
    conversation = []
    for t in turns[-4:]:
        who = "User" if t["role"] == "user" else "Assistant"
        content = " ".join(t["content"].split())
        conversation.append(f"{who}: {content[:400]}")
    messages = [{"role": "system", "content": REWRITE_PROMPT},
                {"role": "user", "content": "Conversation:\n" + "\n".join(conversation)
                 + f"\n\nFollow-up question: {question}\n\nRewritten question:"}]
    try:
        rewrite = generator.generate(messages, max_tokens=REWRITE_TOKENS, temperature=0.0, stop=["\n"])
    except Exception:  # a failing model must not stop the answer; the fallback still works
        rewrite = ""
    rewrite = re.sub(r"^\s*(?:rewritten|standalone)?\s*question\s*:\s*", "", rewrite.strip(), flags=re.IGNORECASE)
    rewrite = rewrite.strip().strip('"“”').strip()
    if good_rewrite(rewrite, question, turns):
        return rewrite, "model"
    return fallback_rewrite(question, turns), "fallback"
