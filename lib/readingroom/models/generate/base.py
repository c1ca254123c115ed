"""What every backend shares: the Generator interface, chat messages and
their check, the settings' check, the stop-string filter, the GGUF check."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from readingroom.models.catalogue import ModelError

ROLES = ("system", "user", "assistant")
Message = Mapping[str, str]


class GeneratorError(ModelError):
    pass


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one call: the prompt as the model saw it (chat template
    included) and the tokens it generated, an end-of-turn token included;
    `cached_tokens`: the prompt's start the model had in its cache already
    and did not read again. None where a backend does not report them."""
    prompt_tokens: int | None
    completion_tokens: int | None
    cached_tokens: int | None = field(default=None, compare=False)  # how it was served, not what was used


class Generator(ABC):
    """Chat messages in, text out, piece by piece."""

    name: str
    backend: str
    last_usage: TokenUsage | None = None  # of the last call that finished or was closed

    @abstractmethod
    def stream(self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
               seed: int = 0, stop: Sequence[str] | None = None,
               json_schema: Mapping | None = None) -> Iterator[str]:
        """The reply to `messages`, as text pieces while they are produced."""

    def generate(self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
                 seed: int = 0, stop: Sequence[str] | None = None, json_schema: Mapping | None = None) -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens, temperature=temperature,
                                   seed=seed, stop=stop, json_schema=json_schema))

    # `json_schema`: the text must be JSON of that schema. llama.cpp enforces
    # it with a grammar while decoding; a backend that cannot says so in
    # `enforces_json_schema`, and the caller reads what it gets.
    enforces_json_schema = False

    def choice_probabilities(self, messages: Sequence[Message], options: Sequence[str]) -> dict[str, float]:
        """The probability that the reply to `messages` starts with each of
        `options` (one word each, any case, with or without a leading space),
        read from the model's next-token distribution: a judgement with a
        confidence, not a sampled word."""
        raise GeneratorError(f"the {self.backend} backend cannot score choices")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({self.backend})>"


def checked_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    if isinstance(messages, (str, bytes)) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...}")
    checked = []
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role not in ROLES or not isinstance(content, str):
            raise ValueError(f"a message needs a role in {ROLES} and text content, not {message!r}")
        checked.append({"role": role, "content": content})
    return checked


def check_settings(max_tokens: int, temperature: float) -> None:
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be 0 (greedy) or more, not {temperature}")


class StopStringFilter:
    """Passes text through until a stop string appears, and never the stop
    string itself. A stop string can arrive split over pieces, so the end of
    the text that could be the start of one is held back until it is decided."""

    def __init__(self, stop: Sequence[str] | None):
        self.stop = [s for s in stop or () if s]
        self.held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        if not self.stop:
            return text
        self.held += text
        found = [i for s in self.stop if (i := self.held.find(s)) >= 0]
        if found:
            passed, self.held, self.stopped = self.held[:min(found)], "", True
            return passed
        keep = self._possible_stop_start()
        passed, self.held = self.held[:len(self.held) - keep], self.held[len(self.held) - keep:]
        return passed

    def finish(self) -> str:
        """What was held back, once the text has ended without a stop string."""
        rest, self.held = ("" if self.stopped else self.held), ""
        return rest

    def _possible_stop_start(self) -> int:
        longest = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(self.held)), longest, -1):
                if self.held.endswith(s[:n]):
                    longest = n
                    break
        return longest


def check_gguf(path: Path) -> Path:
    """`path` if it is a readable GGUF file; a GeneratorError naming it if not."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise GeneratorError(f"cannot read the model file {path}: {e.strerror or e}") from e
    if magic != b"GGUF":
        raise GeneratorError(f"{path} is not a GGUF model file (it does not start with 'GGUF')")
    return path
