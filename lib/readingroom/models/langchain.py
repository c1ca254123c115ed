"""Reading Room's generators and LangChain chat models, each usable as the other.

- ReadingRoomChatModel(generator): one of our Generators as a LangChain chat
  model, for chains such as `prompt | model | StrOutputParser()`.
- LangChainGenerator(chat_model): any LangChain chat model as one of our
  Generators, so a local Ollama or an OpenAI-compatible server can stand in
  for the built-in backends:

      from langchain_openai import ChatOpenAI
      generator = LangChainGenerator(ChatOpenAI(base_url="http://localhost:8080/v1", api_key="none"))

- ReadingRoomRetriever(searcher=...): a library's search as a LangChain
  retriever, for any chain that takes one.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LangChainDocument
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import (AIMessage, AIMessageChunk, BaseMessage, ChatMessage, HumanMessage,
                                     SystemMessage)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from readingroom.models.generate import Generator, StopStringFilter, TokenUsage, check_settings, checked_messages

SETTINGS = ("max_tokens", "temperature", "seed")
_ROLE_OF_TYPE = {"system": "system", "human": "user", "ai": "assistant"}
_MESSAGE_OF_ROLE = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


def text_of(message: BaseMessage) -> str:
    """A message's text: its content, or the text blocks of a list content."""
    if isinstance(message.content, str):
        return message.content
    return "".join(block if isinstance(block, str) else block.get("text", "")
                   for block in message.content
                   if isinstance(block, str) or block.get("type") == "text")


def to_chat_messages(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    converted = []
    for message in messages:
        role = message.role if isinstance(message, ChatMessage) else _ROLE_OF_TYPE.get(message.type)
        if role not in _MESSAGE_OF_ROLE:
            raise ValueError(f"Reading Room's generators take system, user and assistant messages, "
                             f"not a {type(message).__name__}")
        converted.append({"role": role, "content": text_of(message)})
    return converted


def to_langchain_messages(messages) -> list[BaseMessage]:
    return [_MESSAGE_OF_ROLE[m["role"]](content=m["content"]) for m in checked_messages(messages)]


def usage_metadata(usage: TokenUsage | None) -> dict[str, int] | None:
    if usage is None or usage.prompt_tokens is None or usage.completion_tokens is None:
        return None
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens}


class ReadingRoomChatModel(BaseChatModel):
    """One of our Generators as a LangChain chat model. max_tokens,
    temperature and seed are fields, and can be given per call
    (`model.invoke(..., max_tokens=50)` or `model.bind(...)`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    generator: Generator
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0

    @property
    def _llm_type(self) -> str:
        return f"readingroom-{self.generator.backend}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.generator.name, "backend": self.generator.backend,
                "max_tokens": self.max_tokens, "temperature": self.temperature, "seed": self.seed}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        """What LangSmith (and LangChain's callbacks) record of a call."""
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "readingroom"
        params["ls_model_name"] = kwargs.get("model") or self.generator.name
        params["ls_max_tokens"] = kwargs.get("max_tokens", self.max_tokens)
        params["ls_temperature"] = kwargs.get("temperature", self.temperature)
        return params

    def _settings(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        unknown = set(kwargs) - set(SETTINGS)
        if unknown:
            raise TypeError(f"unknown generation settings {sorted(unknown)}; these are {', '.join(SETTINGS)}")
        settings = {name: kwargs.get(name, getattr(self, name)) for name in SETTINGS}
        return {**settings, "stop": stop}

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        text = self.generator.generate(to_chat_messages(messages), **self._settings(stop, kwargs))
        message = AIMessage(content=text, usage_metadata=usage_metadata(self.generator.last_usage),
                            response_metadata={"model_name": self.generator.name})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for piece in self.generator.stream(to_chat_messages(messages), **self._settings(stop, kwargs)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        # Token counts are known once the text has ended: an empty last chunk
        # carries them, and the model's name (once, so that it is not repeated
        # when LangChain joins the chunks).
        last = AIMessageChunk(content="", usage_metadata=usage_metadata(self.generator.last_usage),
                              response_metadata={"model_name": self.generator.name}, chunk_position="last")
        yield ChatGenerationChunk(message=last)


class LangChainGenerator(Generator):
    """Any LangChain chat model behind our Generator interface.

    max_tokens, temperature and seed go to the model as call arguments under
    those names (what ChatOpenAI and OpenAI-compatible servers take); for a
    model that names them otherwise (ChatOllama: num_predict), set them when
    constructing it and pass `pass_settings=False`. Stop strings are passed
    on and also enforced here, since not every server honours them. Token
    counts are what the model reports in its usage metadata, else None."""

    backend = "langchain"

    def __init__(self, chat_model: BaseChatModel, *, pass_settings: bool = True, name: str | None = None):
        self.chat_model = chat_model
        self.pass_settings = pass_settings
        self.name = name or getattr(chat_model, "model_name", None) or getattr(chat_model, "model", None) \
            or type(chat_model).__name__

    def stream(self, messages, *, max_tokens=256, temperature=0.0, seed=0, stop=None, json_schema=None):
        lc_messages = to_langchain_messages(messages)
        check_settings(max_tokens, temperature)
        settings = dict(max_tokens=max_tokens, temperature=temperature, seed=seed) if self.pass_settings else {}
        self.last_usage = None
        counts = {"input_tokens": None, "output_tokens": None}
        stop_filter = StopStringFilter(stop)
        chunks = self.chat_model.stream(lc_messages, stop=list(stop) if stop else None, **settings)
        try:
            for chunk in chunks:
                for name, value in (getattr(chunk, "usage_metadata", None) or {}).items():
                    if name in counts:
                        counts[name] = (counts[name] or 0) + value
                if piece := stop_filter.feed(text_of(chunk)):
                    yield piece
                if stop_filter.stopped:
                    break
            if rest := stop_filter.finish():
                yield rest
        finally:
            chunks.close()
            self.last_usage = TokenUsage(counts["input_tokens"], counts["output_tokens"])


# --- retrieval -----------------------------------------------------------------

# The fields `readingroom search --json` prints, less the text (the page content).
HIT_METADATA = ("passage_id", "doc_id", "title", "author", "year", "citation", "anchor", "score",
                "language", "source", "url", "section")


class ReadingRoomRetriever(BaseRetriever):
    """A library's search as a LangChain retriever:

        retriever = ReadingRoomRetriever(searcher=searcher_for(lib), k=5)
        retriever.invoke("Why do anarchists oppose the state?")

    Each Document's page_content is the passage text; its metadata carries
    the same fields as `readingroom search --json`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    searcher: Any
    k: int = 10
    filters: Any = None  # a readingroom.search.Filters
    mode: str | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None) -> list[LangChainDocument]:
        """`k` given to invoke (`retriever.invoke(query, k=1)`) wins over the field."""
        hits = self.searcher.search(query, self.k if k is None else k, self.filters, mode=self.mode)
        return [LangChainDocument(page_content=h.text, id=h.passage_id,
                                  metadata={key: getattr(h, key) for key in HIT_METADATA})
                for h in hits]
