"""Reading Room: a study group's own library of texts, searchable, with an
assistant that answers only from it and always says where.

    from readingroom import open_library, ingest_paths
    with open_library("library.duckdb") as lib:
        print(ingest_paths(lib, ["texts/"]).summary())
"""
from .document import Block, Document
from .ingest import IngestReport, add_corpus, ingest, ingest_paths
from .library import Library, LibraryError, open_library
from .passages import Passage, Splitter

# Models are heavy to import (torch, transformers): reach them as
# readingroom.embed, readingroom.generate, readingroom.models.

__version__ = "0.1.0"
__all__ = [
    "Block", "Document", "IngestReport", "Library", "LibraryError", "Passage", "Splitter",
    "add_corpus", "ingest", "ingest_paths", "open_library",
]
