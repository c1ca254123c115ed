"""An aid made: the material cut into batches, the model's items for each
batch drafted as JSON, then each checked (study/check.py), the verified
ones kept (each once), the others recorded with the reason.

A batch's drafts are checked after its JSON is complete, not while it
streams: the judge is the same model, and a model holds one context.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from tqdm.auto import tqdm

from readingroom.study.check import check_draft
from readingroom.study.core import Aid, AidSpec, Dropped, draft_items
from readingroom.study.select import Material


def build_aid(spec: AidSpec, lib, material: Material, generator, judge, *,
             progress: bool = True, on_item: Callable | None = None) -> Aid:
    """Draft items batch by batch, check each (check.check_draft), keep the
    verified ones. `on_item(item)` is called as each is kept (a widget can
    show them as they come)."""
    started = time.perf_counter()
    aid = Aid(spec.kind, f"{spec.title}: {material.title}", material, model=getattr(generator, "name", ""))
    batches = spec.batches(material)
    seen = set()
    for heading, passages in tqdm(batches, desc=spec.title, unit="batch", disable=not progress):
        drafting = time.perf_counter()
        drafts = draft_items(generator, spec, passages, heading)
        aid.draft_seconds += time.perf_counter() - drafting
        for draft in drafts:
            aid.drafted += 1
            item, dropped, located = check_draft(spec, draft, material, judge, heading)
            aid.located += located
            aid.dropped.extend(dropped)
            if item is not None:
                key = (tuple(item.rows()), item.quote.n, item.quote.start)
                if key in seen:
                    aid.dropped.append(Dropped(spec.kind, draft, "the same item again"))
                    continue
                seen.add(key)
                aid.items.append(item)
                if on_item:
                    on_item(item)
    spec.finish(aid, lib)
    aid.seconds = time.perf_counter() - started
    return aid
