"""Embedding speed: passages per second from a library to stored vectors,
and what faster ways of running the same model would give.

    python bench/embed.py [--passages 150] [--batch-size 32] [--repeat 2] [--model all-minilm-l6-v2]

Passages: a deterministic sample of --passages from ../shared/corpus/marx-engels
when present, else An Anarchist FAQ from the corpus cache, else
data/fixtures, ingested into a temporary library.

1. Our pipeline against the floor. `embed_library` on a fresh copy of that
   library (open it, find the texts without vectors, encode, store, commit),
   over plain `SentenceTransformer.encode` of the same texts with the same
   model and batch size. The aim is a ratio of at least 0.95.
2. Speed-ups, each as passages/s and ratio over plain fp32 encode, and its
   agreement with fp32: for 50 sample passages, the share of their 10
   nearest neighbours (by the variant's vectors) that fp32 also ranks in the
   top 10 (overlap@10). A variant is worth offering at >= 1.5x with
   overlap@10 >= 0.95.

Runs are interleaved (one of each per round) and the median is reported, so
that load from other processes falls on all of them alike. The model is
loaded and warmed up before timing; exports (OpenVINO) are made once into
the model cache and not timed.

sentence-transformers' ONNX backend needs optimum-onnx, whose newest release
(0.1.0) requires transformers<4.58; with this stack's transformers 5 it is
reported as not available. OpenVINO needs only the openvino package.
"""
from __future__ import annotations

import argparse
import copy
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))

from readingroom import ingest, ingest_paths, open_library  # noqa: E402
from readingroom.corpus import corpora  # noqa: E402
from readingroom.models.embed import (embed_library, exports_dir, load_embedder, openvino_export_path,  # noqa: E402
                                      openvino_precision)
from readingroom.models.catalogue import DEFAULT_EMBEDDER  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MARX_ENGELS = ROOT.parent / "shared" / "corpus" / "marx-engels"
SAMPLE_QUERIES = 50
NEIGHBOURS = 10


def build_library(path: Path, passages: int) -> str:
    """Ingest the first corpus there is, then keep a fixed sample of passages."""
    with open_library(path) as lib:
        if MARX_ENGELS.is_dir():
            ingest_paths(lib, [MARX_ENGELS], progress=False)
            name = "marx-engels"
        else:
            try:
                corpus = corpora.get("anarchist-faq")
                ingest(lib, corpora.read(corpus, corpora.fetch(corpus, download=False)), progress=False)
                name = "anarchist-faq"
            except corpora.CorpusError:
                ingest_paths(lib, [ROOT / "data" / "fixtures"], progress=False)
                name = "data/fixtures"
        with lib.transaction():
            lib.con.execute(
                "DELETE FROM passages WHERE passage_id NOT IN "
                "(SELECT passage_id FROM passages ORDER BY md5(passage_id) LIMIT ?)", [passages]
            )
        return name


def library_texts(path: Path) -> list[str]:
    with open_library(path, read_only=True) as lib:
        return [t for (t,) in lib.con.execute("SELECT text FROM passages ORDER BY doc_id, ordinal").fetchall()]


def neighbours(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    scores = vectors[queries] @ vectors.T
    scores[np.arange(len(queries)), queries] = -np.inf  # a passage is not its own neighbour
    return np.argsort(-scores, axis=1)[:, :NEIGHBOURS]


def overlap_at_10(reference: np.ndarray, variant: np.ndarray) -> float:
    queries = np.linspace(0, len(reference) - 1, min(SAMPLE_QUERIES, len(reference))).astype(int)
    a, b = neighbours(reference, queries), neighbours(variant, queries)
    return float(np.mean([len(set(x) & set(y)) / NEIGHBOURS for x, y in zip(a, b)]))


def unsorted_batches(encoder, texts, batch_size):
    """Batches in library order: one encode call per batch, so that nothing
    sorts the texts by length across batches."""
    return np.concatenate([
        encoder.encode(texts[i:i + batch_size], batch_size=batch_size, normalize_embeddings=True)
        for i in range(0, len(texts), batch_size)
    ])


def torch_bf16(encoder):
    import torch

    model = copy.deepcopy(encoder).to(torch.bfloat16)
    return lambda texts, batch_size: model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_tensor=True).float().numpy()


def torch_autocast_bf16(encoder):
    """bf16 matrix products, with the ops autocast keeps in fp32 (softmax, layer norm)."""
    import torch

    def encode(texts, batch_size):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return encoder.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                  convert_to_tensor=True).float().numpy()
    return encode


def torch_dynamic_int8(encoder):
    import torch

    model = copy.deepcopy(encoder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
        torch.ao.quantization.quantize_dynamic(model[0].model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return lambda texts, batch_size: model.encode(texts, batch_size=batch_size, normalize_embeddings=True)


def openvino_with(precision: str, model):
    import dataclasses

    import openvino

    embedder = load_embedder(model, "openvino-bf16")  # makes the export if it is not cached
    compiled = openvino.Core().compile_model(
        str(openvino_export_path(embedder.resolved)), "CPU", {"INFERENCE_PRECISION_HINT": precision})
    variant = dataclasses.replace(embedder, compiled=compiled)
    return variant.encode_documents


def sentence_transformers_onnx(resolved, quantised: bool):
    """sentence-transformers' own ONNX backend (it needs optimum-onnx), the
    export kept in the model's exports folder."""
    from sentence_transformers import SentenceTransformer

    folder = exports_dir(resolved) / "sentence-transformers-onnx"
    if not (folder / "onnx" / "model.onnx").exists():
        SentenceTransformer(str(resolved.path), device="cpu", local_files_only=True,
                            backend="onnx").save_pretrained(str(folder))
    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True, backend="onnx")
    if quantised:
        from sentence_transformers.backend import export_dynamic_quantized_onnx_model

        if not (folder / "onnx" / "model_qint8_avx512_vnni.onnx").exists():
            export_dynamic_quantized_onnx_model(model, "avx512_vnni", str(folder))
        model = SentenceTransformer(str(folder), device="cpu", local_files_only=True, backend="onnx",
                                    model_kwargs={"file_name": "onnx/model_qint8_avx512_vnni.onnx"})
    return lambda texts, batch_size: model.encode(texts, batch_size=batch_size, normalize_embeddings=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--model", default=DEFAULT_EMBEDDER)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source.duckdb"
        corpus = build_library(source, args.passages)
        texts = library_texts(source)
        n, batch = len(texts), args.batch_size
        embedder = load_embedder(args.model)
        encoder = embedder.encoder
        encoder.encode(texts[:batch], batch_size=batch)  # warm-up
        print(f"{embedder.name}, {n} passages of {corpus} "
              f"(mean {np.mean([len(t) for t in texts]):.0f} characters), batch size {batch}, "
              f"median of {args.repeat}")

        def plain(texts, batch_size):
            return encoder.encode(texts, batch_size=batch_size, normalize_embeddings=True)

        def pipeline(backend):
            def run():
                copy_path = Path(tmp) / f"copy-{time.monotonic_ns()}.duckdb"
                shutil.copy(source, copy_path)
                start = time.perf_counter()
                with open_library(copy_path) as lib:
                    report = embed_library(lib, args.model, batch_size=batch, progress=False, backend=backend)
                seconds = time.perf_counter() - start
                assert report.embedded == len(set(texts)), report.summary()
                copy_path.unlink()
                return seconds
            return run

        variants = {
            "unsorted batches (library order)": lambda t, b: unsorted_batches(encoder, t, b),
            "torch bf16 (weights and activations)": torch_bf16(encoder),
            "torch autocast bf16": torch_autocast_bf16(encoder),
            "torch dynamic int8 (Linear layers)": torch_dynamic_int8(encoder),
        }
        unavailable = {}
        for label, make in [
            ("onnx fp32 (sentence-transformers backend='onnx')", lambda: sentence_transformers_onnx(embedder.resolved, False)),
            ("onnx int8 (export_dynamic_quantized_onnx_model)", lambda: sentence_transformers_onnx(embedder.resolved, True)),
            ("openvino f32", lambda: openvino_with("f32", args.model)),
            ("openvino bf16 (forced; emulated where the CPU lacks BF16)", lambda: openvino_with("bf16", args.model)),
            ("openvino (backend='openvino-bf16': bf16 where native, else f32)",
             lambda: openvino_with(openvino_precision(), args.model)),
        ]:
            try:
                variants[label] = make()
            except Exception as e:  # a missing package or a failed export: say which, go on
                unavailable[label] = str(e).split(". ")[0].splitlines()[0][:200]
        pipelines = {"embed_library, torch fp32 (default)": pipeline("torch")}
        if "openvino (backend='openvino-bf16': bf16 where native, else f32)" in variants:
            pipelines["embed_library, backend='openvino-bf16'"] = pipeline("openvino-bf16")
            pipelines["embed_library, backend='openvino-bf16'"]()  # warm-up: first compiled runs are slow
        for f in variants.values():
            f(texts[:batch], batch)  # warm-up

        times: dict[str, list[float]] = {"plain": []}
        vectors: dict[str, np.ndarray] = {}
        for _ in range(args.repeat):
            start = time.perf_counter()
            vectors["plain"] = plain(texts, batch)
            times["plain"].append(time.perf_counter() - start)
            for label, run in pipelines.items():
                times.setdefault(label, []).append(run())
            for label, f in variants.items():
                start = time.perf_counter()
                vectors[label] = np.asarray(f(texts, batch), dtype=np.float32)
                times.setdefault(label, []).append(time.perf_counter() - start)

        base = statistics.median(times["plain"])

        def line(label: str, extra: str = "") -> None:
            t = statistics.median(times[label])
            print(f"  {label:<48} {n / t:7.1f} passages/s  ratio {base / t:5.2f}{extra}")

        print("pipeline (library in, stored vectors out) over plain SentenceTransformer.encode:")
        line("plain")
        for label in pipelines:
            line(label)
        print(f"speed-ups (ratio over plain fp32 encode; overlap@{NEIGHBOURS} of {SAMPLE_QUERIES} passages' "
              "neighbours with fp32):")
        for label in variants:
            line(label, f"  overlap@10 {overlap_at_10(vectors['plain'], vectors[label]):.3f}")
        for label, why in unavailable.items():
            print(f"  {label:<48} not available: {why}")


if __name__ == "__main__":
    main()
