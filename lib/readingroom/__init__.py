"""Reading Room: a study group's own library of texts, searchable, with an
assistant that answers only from it and always says where.

    from readingroom import open_library, ingest_paths
    with open_library("library.duckdb") as lib:
        print(ingest_paths(lib, ["texts/"]).summary())

The package follows the data's path, each folder importing only from those
before it (docs/ARCHITECTURE.md):

    corpus/    files to documents to passages    library/  the DuckDB file, ingest
    models/    catalogue, fetch, embed, generate search/   BM25 + vectors, the gate
    answer/    prompt, pipeline, check, render   evaluate/ tune/ news/ explore/
    ui/        the chat, its app and service     cli/      the `readingroom` command
"""
from readingroom.corpus.document import Block, Document
from readingroom.corpus.passages import Passage, Splitter
from readingroom.library.ingest import IngestReport, add_corpus, ingest, ingest_paths
from readingroom.library.store import Library, LibraryError, open_library
# Tuned models (adapter:NAME, embedder:NAME) resolve wherever a model is named;
# the registry is light (no torch) and registers its resolver on import.
from readingroom.tune import registry as _tuned_models  # noqa: F401

# Models are heavy to import (torch, transformers): reach them as
# readingroom.models.embed, readingroom.models.generate, readingroom.search.searcher.

__version__ = "0.1.0"
__all__ = [
    "Block", "Document", "IngestReport", "Library", "LibraryError", "Passage", "Splitter",
    "add_corpus", "ingest", "ingest_paths", "open_library",
]
