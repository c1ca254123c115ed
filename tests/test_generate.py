"""The generator interface on both backends, with a real model (SmolLM2-135M,
the catalogue's test generator), and its LangChain adapters.

Each backend loads once for the module. The transformers backend's first load
ever on a machine converts the GGUF into a bf16 safetensors copy in the cache
(about a minute on 2 cores); later runs read that copy in seconds."""
from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from readingroom.models.generate import (GeneratorError, StopStringFilter, TransformersGenerator, load_generator,
                                  transformers_copy_folder)
from readingroom.models.langchain import LangChainGenerator, ReadingRoomChatModel
from readingroom.models.catalogue import TEST_GENERATOR, ModelError
from readingroom.models.resolve import resolve

BACKENDS = ["llama.cpp", "transformers"]
QUESTION = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Describe the city of Paris in a few sentences."}]


@pytest.fixture(scope="module")
def test_model():
    try:
        return resolve(TEST_GENERATOR, role="generator")
    except ModelError as e:
        pytest.fail(f"{e} (the test set-up, `bash setup.sh test`, fetches it)")


@pytest.fixture(scope="module", params=BACKENDS)
def generator(request, test_model):
    return load_generator(test_model, backend=request.param)


def tokens_in(generator, text: str) -> int:
    """`text`'s length in tokens, counted by the backend's own tokenizer."""
    if generator.backend == "llama.cpp":
        return len(generator.llama.tokenize(text.encode(), add_bos=False, special=True))
    return len(generator.tokenizer.encode(text, add_special_tokens=False))


@pytest.mark.slow
def test_a_model_loads_once_per_process(generator, test_model):
    assert load_generator(test_model, backend=generator.backend) is generator
    assert load_generator(TEST_GENERATOR, backend=generator.backend) is generator


@pytest.mark.slow
def test_stream_yields_pieces_that_join_to_generate(generator):
    pieces = list(generator.stream(QUESTION, max_tokens=12))
    assert len(pieces) >= 3 and all(isinstance(p, str) and p for p in pieces)
    assert "".join(pieces) == generator.generate(QUESTION, max_tokens=12)  # greedy: the same text again


@pytest.mark.slow
def test_a_stream_left_early_does_not_disturb_the_next_call(generator):
    expected = generator.generate(QUESTION, max_tokens=8)
    stream = generator.stream(QUESTION, max_tokens=64)
    next(stream)
    stream.close()
    assert generator.last_usage.completion_tokens < 64  # it stopped generating, not only yielding
    assert generator.generate(QUESTION, max_tokens=8) == expected


@pytest.mark.slow
def test_max_tokens_is_respected_and_counted(generator):
    text = generator.generate(QUESTION, max_tokens=5)
    usage = generator.last_usage
    assert usage.completion_tokens == 5
    assert 0 < tokens_in(generator, text) <= 5
    assert usage.prompt_tokens > tokens_in(generator, QUESTION[1]["content"])  # the chat template's tokens too


@pytest.mark.slow
def test_a_stop_string_ends_the_text_and_is_left_out(generator):
    free = generator.generate(QUESTION, max_tokens=16)
    words = free.split()
    assert len(words) >= 4, free
    stop = words[3]
    stopped = generator.generate(QUESTION, max_tokens=16, stop=[stop])
    assert stopped == free[:free.index(stop)]
    assert stop not in stopped
    assert generator.last_usage.completion_tokens < 16


@pytest.mark.slow
def test_sampling_repeats_for_a_seed(generator):
    greedy = generator.generate(QUESTION, max_tokens=8)
    sampled = {seed: generator.generate(QUESTION, max_tokens=8, temperature=1.0, seed=seed) for seed in (1, 2)}
    assert generator.generate(QUESTION, max_tokens=8, temperature=1.0, seed=1) == sampled[1]
    assert set(sampled.values()) != {greedy}  # it did sample


@pytest.mark.slow
def test_bad_messages_and_settings_are_refused(generator):
    with pytest.raises(ValueError, match="role"):
        generator.generate([{"role": "narrator", "content": "x"}])
    with pytest.raises(ValueError, match="max_tokens"):
        generator.generate(QUESTION, max_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        generator.generate(QUESTION, temperature=-1)


@pytest.mark.slow
def test_the_second_transformers_load_reads_the_safetensors_copy(test_model):
    first = load_generator(test_model, backend="transformers")
    folder = transformers_copy_folder(test_model)
    assert (folder / "model.safetensors").is_file()
    assert not list(folder.glob("*.bin"))

    second = TransformersGenerator(test_model)
    assert second.loaded_from == folder
    from safetensors import safe_open
    with safe_open(folder / "model.safetensors", "pt") as saved:
        embeddings = saved.get_tensor("model.embed_tokens.weight")
    assert second.network.model.embed_tokens.weight.to(embeddings.dtype).equal(embeddings)
    assert second.generate(QUESTION, max_tokens=8) == first.generate(QUESTION, max_tokens=8)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_missing_or_damaged_gguf_is_named(backend, tmp_path, monkeypatch, test_model):
    monkeypatch.setenv("READINGROOM_CACHE", str(tmp_path / "cache"))
    missing = tmp_path / "absent.gguf"
    with pytest.raises(ModelError, match="absent.gguf"):
        load_generator(str(missing), backend=backend)

    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("these are notes, not a model")
    with pytest.raises(ModelError, match="notes.gguf"):
        load_generator(str(not_gguf), backend=backend)

    truncated = tmp_path / "truncated.gguf"
    with open(test_model.path, "rb") as whole, open(truncated, "wb") as part:
        part.write(whole.read(64 << 10))
    with pytest.raises(GeneratorError, match="truncated.gguf"):
        load_generator(str(truncated), backend=backend)
    assert not list((tmp_path / "cache").rglob("*transformers-bf16*"))  # no half-made copy left behind


def test_stop_string_filter_holds_back_a_stop_split_over_pieces():
    stop_filter = StopStringFilter(["</end>"])
    passed = [stop_filter.feed(piece) for piece in ["The text </", "e", "nd> and more"]]
    assert passed == ["The text ", "", ""] and stop_filter.stopped
    unfinished = StopStringFilter(["</end>"])
    assert unfinished.feed("ends with </") == "ends with "
    assert unfinished.finish() == "</"


# --- LangChain --------------------------------------------------------------------

@pytest.mark.slow
def test_our_generator_works_in_a_langchain_chain(generator):
    model = ReadingRoomChatModel(generator=generator, max_tokens=10)
    prompt = ChatPromptTemplate.from_messages([("system", "{role}"), ("human", "{question}")])
    chain = prompt | model | StrOutputParser()
    values = {"role": QUESTION[0]["content"], "question": QUESTION[1]["content"]}
    expected = generator.generate(QUESTION, max_tokens=10)
    assert chain.invoke(values) == expected
    pieces = [p for p in chain.stream(values) if p]
    assert len(pieces) >= 3 and "".join(pieces) == expected

    reply = model.invoke(QUESTION[1]["content"], max_tokens=4)
    assert reply.usage_metadata["output_tokens"] == 4
    with pytest.raises(TypeError, match="unknown generation settings"):
        model.invoke("hello", top_k=3)


def test_any_langchain_chat_model_serves_as_a_generator():
    answer = "The Commune was proclaimed on 28 March 1871. END And more."
    generator = LangChainGenerator(GenericFakeChatModel(messages=iter([AIMessage(answer)] * 2)))
    pieces = list(generator.stream(QUESTION))
    assert len(pieces) > 3 and "".join(pieces) == answer
    assert generator.generate(QUESTION, stop=[" END"]) == "The Commune was proclaimed on 28 March 1871."
    assert generator.last_usage.completion_tokens is None  # this model reports no usage

    characters = LangChainGenerator(FakeListChatModel(responses=["abc STOP def"]))
    assert list(characters.stream(QUESTION, stop=["STOP"])) == ["a", "b", "c", " "]


@pytest.mark.slow
def test_round_trip_through_langchain_keeps_text_and_counts():
    llama = load_generator(TEST_GENERATOR, backend="llama.cpp")
    round_trip = LangChainGenerator(ReadingRoomChatModel(generator=llama))
    assert round_trip.generate(QUESTION, max_tokens=6) == llama.generate(QUESTION, max_tokens=6)
    assert round_trip.last_usage == llama.last_usage
