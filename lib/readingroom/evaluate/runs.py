"""The library's runs table: every evaluation or training run, its settings,
metrics and per-question details, so that runs compare over time."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from readingroom.library.store import Library


@dataclass
class Run:
    kind: str
    metrics: dict
    settings: dict
    model: str | None
    corpus_sha256: str
    dataset: str | None = None
    dataset_sha256: str | None = None
    details: list = field(default_factory=list)
    seconds: float = 0.0
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc).replace(tzinfo=None))
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    def summary(self) -> str:
        numbers = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in self.metrics.items())
        return f"{self.kind} run {self.run_id} ({self.seconds:.1f} s): {numbers}"


def record_run(lib: Library, run: Run) -> None:
    with lib.transaction():
        lib.con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run.run_id, run.kind, run.started, run.seconds, run.model, run.corpus_sha256, run.dataset,
             run.dataset_sha256, json.dumps(run.settings, default=str), json.dumps(run.metrics),
             json.dumps(run.details, ensure_ascii=False, default=str)],
        )


def runs(lib: Library, kind: str | None = None):
    """The recorded runs, newest first, with their metrics as columns (a DataFrame)."""
    import pandas as pd

    rows = lib.con.execute(
        "SELECT run_id, kind, started, seconds, model, dataset, settings, metrics FROM runs "
        "WHERE $kind IS NULL OR kind = $kind ORDER BY started DESC", {"kind": kind}).df()
    if rows.empty:
        return rows
    metrics = pd.DataFrame([json.loads(m) for m in rows.pop("metrics")], index=rows.index)
    return pd.concat([rows, metrics], axis=1)
