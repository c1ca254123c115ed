"""LangChain's own standard tests (langchain-tests) run against our adapters:
ReadingRoomRetriever over a real library (MiniLM vectors and BM25), and
ReadingRoomChatModel over SmolLM2-135M in llama.cpp, with short answers.

Only what truly works is declared: no tool calling, no structured output
or JSON mode (our generators have no grammar-constrained decoding), no
images, audio or PDF; token usage is reported, with the model's name."""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from readingroom import Block, Document, ingest, open_library
from readingroom.models.langchain import ReadingRoomChatModel, ReadingRoomRetriever

pytestmark = pytest.mark.slow  # they load MiniLM and SmolLM2

TEXTS = {
    "strikes": "The strike is the weapon of the workers: when the dockers stop work together, no ship is loaded.",
    "housing": "Tenants who organise can stop the rent from rising, as the rent strikes of the cities showed.",
    "commune": "The Paris Commune held power in Paris from March to May 1871, the first workers' government.",
}


@functools.cache
def searcher():
    """A small library of our own, embedded with MiniLM, searched hybrid."""
    from readingroom.models.embed import embed_library
    from readingroom.search.searcher import searcher_for

    folder = Path(tempfile.mkdtemp(prefix="langchain-standard-"))
    lib = open_library(folder / "library.duckdb")
    ingest(lib, [Document("text", key, key.title(), [Block(text)], language="en") for key, text in TEXTS.items()],
           progress=False)
    embed_library(lib, progress=False)
    return searcher_for(lib)


@functools.cache
def smollm2():
    from readingroom.models.catalogue import TEST_GENERATOR
    from readingroom.models.generate import load_generator

    return load_generator(TEST_GENERATOR, backend="llama.cpp")


class TestReadingRoomRetriever(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[ReadingRoomRetriever]:
        return ReadingRoomRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"searcher": searcher(), "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "Why do workers strike?"


class ReadingRoomChatModelSettings:
    @property
    def chat_model_class(self) -> type[ReadingRoomChatModel]:
        return ReadingRoomChatModel

    @property
    def chat_model_params(self) -> dict:
        return {"generator": smollm2()}

    @property
    def standard_chat_model_params(self) -> dict:
        return {**super().standard_chat_model_params, "max_tokens": 24}  # short answers: fast

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def supports_json_mode(self) -> bool:
        return False


class TestReadingRoomChatModelUnit(ReadingRoomChatModelSettings, ChatModelUnitTests):
    pass


class TestReadingRoomChatModelIntegration(ReadingRoomChatModelSettings, ChatModelIntegrationTests):
    pass
