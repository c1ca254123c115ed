"""Embeddings: each passage's text as a unit vector, stored in the library.

Vectors are keyed by the model's identity (which changes when its weights
change) and the sha256 of the passage text. So the same text in two places is
embedded once, adding a document embeds only its new passages, a model with
new weights embeds everything again under its own key, and vectors of texts
that are no longer in any passage stay until `prune()` removes them.

`embed_library` works in chunks, one transaction each: a run that is killed
keeps every chunk it finished, and the next run embeds only what is missing.
Texts are embedded longest first, so the texts that share a batch have
nearly the same length and little of each batch is padding.

Models are loaded from local folders only, with the Hugging Face libraries
told to stay offline: nothing here ever reaches the network.
"""
from __future__ import annotations

import os
import shutil
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from readingroom.library.store import Library
from readingroom.models.catalogue import DEFAULT_EMBEDDER, ModelError, models_dir
from readingroom.models.resolve import resolve
from readingroom.workers import ordered_map

DEFAULT_BATCH_SIZE = 32
# Texts written per transaction, in batches: large enough that committing is
# a small cost next to the model, small enough that a killed run loses little.
BATCHES_PER_CHUNK = 8
COPY_BLOCK_ROWS = 8192  # load_matrix copies stored vectors into place this many at a time


@dataclass
class EmbedReport:
    model: str  # the model's name
    identity: str  # the key its vectors are stored under
    dimensions: int
    passages: int = 0  # passages in the library
    texts: int = 0  # distinct passage texts among them
    already_embedded: int = 0  # texts that had a vector before this run
    embedded: int = 0  # texts this run sent through the model
    chunks: int = 0  # transactions committed
    seconds: float = 0.0

    def summary(self) -> str:
        rate = f", {self.embedded / self.seconds:.1f} texts/s" if self.embedded and self.seconds else ""
        return (
            f"{self.model}: embedded {self.embedded} texts in {self.seconds:.1f} s{rate}; "
            f"{self.already_embedded} already had vectors; "
            f"{self.passages} passages, {self.texts} distinct texts, {self.dimensions} dimensions"
        )


@dataclass
class Embedder:
    """A resolved model loaded for encoding, once per process and backend.

    The SentenceTransformer always does the tokenising and prompting; with the
    "openvino-bf16" backend an OpenVINO export of the same network (tokens in,
    sentence embedding out) runs the model instead of torch."""

    resolved: object  # what models.resolve() returned
    encoder: object  # sentence_transformers.SentenceTransformer
    dimensions: int
    document_prompt: str | None  # names in encoder.prompts, e.g. EmbeddingGemma's "document"
    query_prompt: str | None
    backend: str = "torch"
    compiled: object = None  # the OpenVINO compiled model, for that backend
    input_names: tuple[str, ...] = ()  # the token tensors it takes, in order

    @property
    def identity(self) -> str:
        return self.resolved.identity

    @property
    def name(self) -> str:
        return self.resolved.name

    def encode_documents(self, texts: list[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Unit vectors of `texts`, one row each, in their order."""
        return self._encode(texts, self.document_prompt, batch_size)

    def encode_query(self, text: str) -> np.ndarray:
        return self._encode([text], self.query_prompt, 1)[0]

    def _encode(self, texts: list[str], prompt_name: str | None, batch_size: int) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        if self.compiled is None:
            vectors = self.encoder.encode(
                texts, prompt_name=prompt_name, batch_size=batch_size,
                normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False,
            )
            return np.ascontiguousarray(vectors, dtype=np.float32)
        prompt = self.encoder.prompts.get(prompt_name) if prompt_name else None
        vectors = np.empty((len(texts), self.dimensions), dtype=np.float32)
        # Longest first, as SentenceTransformer.encode does: batches of like
        # lengths pad little.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            features = self.encoder.preprocess([texts[i] for i in rows], prompt=prompt)
            vectors[rows] = self.compiled([features[n].numpy() for n in self.input_names])[0]
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


BACKENDS = ("torch", "openvino-bf16")
# One Embedder per (folder, identity, backend) for the life of the process:
# loading costs seconds, and a notebook embeds and searches many times.
_LOADED: dict[tuple[str, str, str], Embedder] = {}


def resolve_embedder(model) -> object:
    """A catalogue name or a folder (str or Path) resolved through
    models.resolve(); an already-resolved model (anything with .path and
    .identity) is taken as it is."""
    if hasattr(model, "path") and hasattr(model, "identity"):
        return model
    return resolve(str(model), role="embedder")


def load_embedder(model=DEFAULT_EMBEDDER, backend: str = "torch") -> Embedder:
    """The model ready to encode: "torch" (fp32, the default) or
    "openvino-bf16" (needs the openvino package; exported once into the
    cache, then about twice as fast on CPUs with bf16 units, see bench/embed.py;
    on CPUs without them it runs in f32, openvino_precision())."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown embedding backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    resolved = resolve_embedder(model)
    key = (str(resolved.path), resolved.identity, backend)
    if key not in _LOADED:
        from readingroom.models.quiet import quiet_transformers

        # quiet: transformers' "Loading weights" bar would freeze at 0% in a
        # notebook's saved output.
        with _offline(), quiet_transformers():
            from sentence_transformers import SentenceTransformer

            encoder = SentenceTransformer(str(resolved.path), device="cpu", local_files_only=True)
        dimensions = encoder.get_embedding_dimension()
        artifact = getattr(resolved, "artifact", None)
        expected = getattr(artifact, "dimensions", None)
        if expected is not None and expected != dimensions:
            raise ValueError(
                f"{resolved.name}: the catalogue says {expected} dimensions but the model "
                f"in {resolved.path} gives {dimensions}"
            )
        # The catalogue names the prompts (EmbeddingGemma's "query" and
        # "document"); otherwise the model's own are picked the way
        # encode_document and encode_query pick them.
        document_prompt = getattr(artifact, "document_prompt", None) or next(
            (n for n in ("document", "passage", "corpus") if n in encoder.prompts), None)
        query_prompt = getattr(artifact, "query_prompt", None) or ("query" if "query" in encoder.prompts else None)
        embedder = Embedder(resolved, encoder, dimensions, document_prompt, query_prompt, backend)
        if backend == "openvino-bf16":
            embedder.input_names = _input_names(encoder)
            embedder.compiled = _openvino_bf16(encoder, resolved, embedder.input_names)
        _LOADED[key] = embedder
    return _LOADED[key]


def _input_names(encoder) -> tuple[str, ...]:
    """The tensors the tokenizer makes (input_ids, attention_mask, ...), in order."""
    features = encoder.preprocess(["a few words"])
    return tuple(name for name, value in features.items() if hasattr(value, "numpy"))


OPENVINO_EXPORT_VERSION = "1"  # bump when the export below changes


def exports_dir(resolved) -> Path:
    """Where copies of a model converted for other runtimes are kept: made
    once per model identity, beside the catalogue's .parts and .stamps."""
    return models_dir() / ".exports" / resolved.identity


def openvino_export_path(resolved) -> Path:
    return exports_dir(resolved) / f"openvino-{OPENVINO_EXPORT_VERSION}" / "model.xml"


def _openvino_bf16(encoder, resolved, names: tuple[str, ...]):
    try:
        import openvino
    except ImportError as e:
        raise ImportError("the openvino-bf16 backend needs the openvino package: pip install openvino") from e
    import torch

    if any(getattr(module, "include_prompt", True) is False for module in encoder):
        # Such pooling needs the prompt's length, which the export does not take.
        raise ModelError(f"{resolved.name} leaves its prompt out of pooling; the openvino-bf16 "
                         "backend cannot run it: use backend='torch'")
    xml = openvino_export_path(resolved)
    if not xml.exists():
        # Two texts of different lengths, so that the traced network has seen padding.
        example = encoder.preprocess(["An example passage to trace the network with.", "A shorter one."])

        class SentenceEmbedding(torch.nn.Module):
            """The whole SentenceTransformer (transformer, pooling, dense
            layers, normalising) as one function of the token tensors."""

            def __init__(self):
                super().__init__()
                self.encoder = encoder

            def forward(self, *tensors):
                return self.encoder(dict(zip(names, tensors)))["sentence_embedding"]

        with torch.inference_mode(), warnings.catch_warnings():
            # The tracer warns about Python conditions it freezes; for an
            # encoder they are constant (no cache, no causal mask), and the
            # tests compare the export's vectors with torch's.
            warnings.simplefilter("ignore")
            try:
                exported = openvino.convert_model(
                    SentenceEmbedding().eval(),
                    example_input=tuple(example[n] for n in names),
                    input=[openvino.PartialShape([-1, -1])] * len(names),  # any batch, any length
                )
            except Exception as e:  # the tracer's and converter's errors are many and deep; name the model
                # EmbeddingGemma's attention does not trace (openvino 2025: "unordered_map::at").
                reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
                raise ModelError(f"{resolved.name} cannot be exported to OpenVINO ({reason}); "
                                 "use backend='torch' (readingroom embed --backend torch)") from e
        # Written beside and renamed into place, so a half-written export
        # never sits in the cache.
        partial = xml.parent.with_name(f"{xml.parent.name}.partial-{os.getpid()}")
        openvino.save_model(exported, partial / xml.name, compress_to_fp16=False)
        xml.parent.parent.mkdir(parents=True, exist_ok=True)
        try:
            partial.rename(xml.parent)
        except OSError:  # another process finished the same export first
            shutil.rmtree(partial, ignore_errors=True)
    return openvino.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": openvino_precision()})


def openvino_precision() -> str:
    """bf16 where the CPU does bf16 arithmetic itself (AVX512-BF16, AMX);
    f32 elsewhere. Asking for bf16 on a CPU without it makes OpenVINO emulate
    it: measured on this project's AVX-512 Xeon without BF16, 64 passages took
    70 s in bf16 against 2.4 s in f32 and 3.8 s with torch."""
    import openvino

    capabilities = openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "bf16" if "BF16" in capabilities else "f32"


@contextmanager
def _offline():
    """HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE set while a model loads (and
    while sentence_transformers is first imported, since huggingface_hub
    reads them at import), then put back as they were."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    before = {n: os.environ.get(n) for n in names}
    os.environ.update({n: "1" for n in names})
    try:
        yield
    finally:
        for n, value in before.items():
            if value is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = value


def embed_library(
    lib: Library,
    model=DEFAULT_EMBEDDER,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    chunk_size: int | None = None,
    backend: str = "torch",
    doc_ids: list[str] | None = None,
    executor=None,
) -> EmbedReport:
    """Embed every passage text that has no vector for `model` yet (with
    `doc_ids`, only those documents' passages: news items as they arrive).
    With `executor` (a Dask cluster's: workers.cluster), the chunks are
    encoded on its workers and stored here in order, as they come back.

    `chunk_size` texts (default: 8 batches) are encoded and committed per
    transaction; the run can be stopped at any point and started again.
    `backend` (see load_embedder) changes the speed, not what is stored: its
    vectors go under the same model identity."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    chunk_size = chunk_size or batch_size * BATCHES_PER_CHUNK
    started = time.perf_counter()
    loaded = load_embedder(model, backend)
    _register_model(lib, loaded)
    report = EmbedReport(loaded.name, loaded.identity, loaded.dimensions)
    chunks = missing_chunks(lib, loaded.identity, chunk_size, doc_ids, report)
    bar = tqdm(total=report.texts - report.already_embedded, unit="text", desc=f"embedding with {loaded.name}",
               disable=not progress)
    if executor is None:
        encode = partial(_encode_with, loaded, batch_size=batch_size)
    else:
        encode = partial(encode_texts, model=model, batch_size=batch_size, backend=backend,
                         identity=loaded.identity)
    try:
        texts = (chunk.column("text").to_pylist() for chunk in chunks)
        for chunk, vectors in zip(chunks, ordered_map(encode, texts, executor=executor)):
            _store_vectors(lib, loaded.identity, chunk.column("text_sha256"), vectors)
            report.embedded += chunk.num_rows
            report.chunks += 1
            bar.update(chunk.num_rows)
    finally:
        bar.close()
        report.seconds = time.perf_counter() - started
    return report


def missing_chunks(lib: Library, identity: str, chunk_size: int, doc_ids: list[str] | None,
                   report: EmbedReport) -> list[pa.Table]:
    """The passage texts (text_sha256, text) without a vector under
    `identity`, longest first, in chunks of `chunk_size`; the report's
    counts of passages, texts and texts already embedded are set. The same
    library gives the same chunks, wherever they are then encoded."""
    only = "" if doc_ids is None else "WHERE p.doc_id IN (SELECT unnest($doc_ids))"
    params = {} if doc_ids is None else {"doc_ids": list(doc_ids)}
    report.passages, report.texts = lib.con.execute(
        f"SELECT count(*), count(DISTINCT text_sha256) FROM passages p {only}", params
    ).fetchone()
    # Arrow keeps the missing texts compact (no Python string per text) until
    # their chunk comes up; longest first, so each batch pads little.
    missing = lib.arrow(
        "SELECT p.text_sha256, any_value(p.text) AS text FROM passages p "
        "ANTI JOIN (SELECT text_sha256 FROM embeddings WHERE model = $model) e USING (text_sha256) "
        f"{only} GROUP BY p.text_sha256 ORDER BY max(length(p.text)) DESC, p.text_sha256",
        {"model": identity, **params},
    )
    report.already_embedded = report.texts - missing.num_rows
    return [missing.slice(start, chunk_size) for start in range(0, missing.num_rows, chunk_size)]


def _encode_with(embedder, texts: list[str], batch_size: int) -> np.ndarray:
    return embedder.encode_documents(texts, batch_size)


def encode_texts(texts: list[str], model, batch_size: int, backend: str = "torch",
                 identity: str | None = None) -> np.ndarray:
    """Vectors of passage texts, for a worker of a cluster: the model is
    loaded there once per process (load_embedder keeps it). `identity`:
    the weights the caller expects; a worker with others refuses."""
    embedder = load_embedder(model, backend)
    if identity is not None and embedder.identity != identity:
        raise RuntimeError(f"this worker's {embedder.name} has other weights ({embedder.identity}) "
                           f"than the library's ({identity}); install the same model on every worker")
    return embedder.encode_documents(texts, batch_size)


def embed_query(text: str, model=DEFAULT_EMBEDDER, backend: str = "torch") -> np.ndarray:
    """The unit vector of a question, with the model's query prompt if it has one."""
    return load_embedder(model, backend).encode_query(text)


def load_matrix(lib: Library, model=DEFAULT_EMBEDDER) -> tuple[np.ndarray, np.ndarray]:
    """(passage_ids, vectors) of every passage that has a vector for `model`,
    in document order: vectors[i] belongs to passage_ids[i].

    vectors is a C-contiguous float32 matrix of unit rows; passages without
    a vector yet are left out. The stored vectors are read once, as Arrow
    buffers (never a Python object per number), and copied once into place.
    Measured at 100k x 384 (a 154 MB matrix): 0.4-0.8 s and 580 MB at the
    peak, DuckDB's block cache included, where joining and sorting the
    vectors inside DuckDB took 1.5 s and 850 MB."""
    resolved = resolve_embedder(model)
    row = lib.con.execute(
        "SELECT dimensions FROM embedding_models WHERE identity = ?", [resolved.identity]
    ).fetchall()
    if not row:
        raise LookupError(f"no passages have been embedded with {resolved.name}; run embed_library first")
    dimensions = row[0][0]
    stored = lib.arrow("SELECT text_sha256, vector FROM embeddings WHERE model = $model", {"model": resolved.identity})
    passages = lib.arrow("SELECT passage_id, text_sha256 FROM passages ORDER BY doc_id, ordinal")
    # For each passage, the row of its text's vector among the stored ones.
    rows = pc.index_in(passages.column("text_sha256"), value_set=stored.column("text_sha256"))
    has_vector = rows.is_valid()
    passage_ids = passages.column("passage_id").filter(has_vector).to_numpy()
    rows = rows.filter(has_vector).to_numpy()
    matrix = np.empty((len(rows), dimensions), dtype=np.float32)
    offset = 0
    for chunk in stored.column("vector").chunks:
        values = chunk.flatten()
        if len(values) != len(chunk) * dimensions:
            raise ValueError(f"stored vectors for {resolved.name} are not all {dimensions} long")
        view = values.to_numpy().reshape(len(chunk), dimensions)  # no copy
        positions = np.flatnonzero((rows >= offset) & (rows < offset + len(chunk)))
        # In blocks, so that the temporary copy numpy makes for fancy
        # indexing stays small.
        for start in range(0, len(positions), COPY_BLOCK_ROWS):
            block = positions[start:start + COPY_BLOCK_ROWS]
            matrix[block] = view[rows[block] - offset]
        offset += len(chunk)
    return passage_ids, matrix


def prune(lib: Library) -> int:
    """Delete vectors whose text is in no passage any more (left behind by
    removed or edited documents); returns how many went."""
    with lib.transaction():
        (removed,) = lib.con.execute(
            "DELETE FROM embeddings e WHERE NOT EXISTS "
            "(SELECT 1 FROM passages p WHERE p.text_sha256 = e.text_sha256)"
        ).fetchone()
    return removed


def _register_model(lib: Library, loaded: Embedder) -> None:
    with lib.transaction():
        lib.con.execute(
            "INSERT INTO embedding_models (identity, name, dimensions, normalised) "
            "VALUES (?, ?, ?, true) ON CONFLICT DO NOTHING",
            [loaded.identity, loaded.name, loaded.dimensions],
        )


def _store_vectors(lib: Library, identity: str, text_sha256: pa.ChunkedArray, vectors: np.ndarray) -> None:
    rows, dimensions = vectors.shape
    new_vectors = pa.table({
        "text_sha256": text_sha256,
        # A view of the numpy buffer, no copy; DuckDB casts it to FLOAT[].
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dimensions),
    })
    with lib.transaction():
        lib.con.register("new_vectors", new_vectors)
        try:
            lib.con.execute(
                "INSERT INTO embeddings (model, text_sha256, vector) "
                "SELECT ?, text_sha256, vector FROM new_vectors",
                [identity],
            )
        finally:
            lib.con.unregister("new_vectors")

