"""Figures for the notebooks: every plot of the package (explore, maps,
evaluate, news) starts from new_figure, so they look alike and none lingers
in pyplot's list of open figures."""
from __future__ import annotations


def new_figure(width: float, height: float, rows: int = 1, columns: int = 1, sharex: bool = False,
               height_ratios: list[float] | None = None):
    """A Figure and its axes, row by row. A bare Figure, not pyplot: it is
    shown once, where it is returned, and does not linger in pyplot's list
    of open figures."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, columns, sharex=sharex, squeeze=False,
                        gridspec_kw={"height_ratios": height_ratios} if height_ratios else None)
    return fig, list(axes.flat)
