"""Items over time: how many each outlet published each day, and how many
were about each topic, as a table and as a plot."""
from __future__ import annotations

import pandas as pd

from readingroom.viz import new_figure


def items_per_day(items: pd.DataFrame, by: str = "outlet") -> pd.DataFrame:
    """Rows: days; columns: the values of `by` (outlet, or topic for a
    table of topic matches joined to items); cells: items."""
    if items.empty:
        return pd.DataFrame()
    day = pd.to_datetime(items["time"]).dt.floor("D")
    table = items.assign(day=day).groupby(["day", by]).size().unstack(by, fill_value=0)
    full = pd.date_range(table.index.min(), table.index.max(), freq="D")
    return table.reindex(full, fill_value=0).rename_axis("day")


def topic_items(items: pd.DataFrame, matches: pd.DataFrame) -> pd.DataFrame:
    """One row per (item, topic it is about), with the item's time, from a
    Scores.table() (rows with above=True count)."""
    above = matches[matches["above"]][["item_id", "topic"]]
    return above.merge(items[["item_id", "time", "outlet"]], on="item_id")


def plot_timeline(per_outlet: pd.DataFrame, per_topic: pd.DataFrame | None = None,
                  title: str = "Items per day"):
    """Stacked bars of items per day by outlet, and (if given) by topic below."""
    panels = 2 if per_topic is not None and not per_topic.empty else 1
    fig, axes = new_figure(10, 2.6 * panels + 0.6, rows=panels, sharex=True)
    for ax, table, label in zip(axes, [per_outlet, per_topic], ["items by outlet", "items by topic"]):
        bottom = None
        for column in table.columns:
            ax.bar(table.index, table[column], bottom=bottom, width=0.8, label=str(column), linewidth=0)
            bottom = table[column] if bottom is None else bottom + table[column]
        ax.set_ylabel(label)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=8, loc="upper left", frameon=False)
    axes[-1].set_xlabel("day (UTC)")
    fig.autofmt_xdate()
    fig.suptitle(title)
    return fig
