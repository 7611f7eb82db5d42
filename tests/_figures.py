"""Test helpers for checking figures by content: record the Figure objects a run saves."""
from __future__ import annotations

from pathlib import Path

import matplotlib.figure


def record_saved_figures(monkeypatch) -> dict:
    """From now on (for the test), every ``Figure.savefig`` still writes its file and also
    records the figure under the file's name: returns that name -> Figure dict."""
    saved: dict = {}
    savefig = matplotlib.figure.Figure.savefig

    def record(fig, fname, *args, **kwargs):
        saved[Path(fname).name] = fig
        return savefig(fig, fname, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    return saved


def panels(fig) -> list:
    """The plotting axes of a figure (colour bars and hidden axes left out)."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.get_visible()]
