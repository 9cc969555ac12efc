"""Plots (matplotlib, written to PNG files; no display needed)."""

from cnnlab.viz.plots import plot_confusion, plot_history

__all__ = ["plot_confusion", "plot_history"]
