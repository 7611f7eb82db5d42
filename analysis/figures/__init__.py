"""Figures (matplotlib, Agg backend; every figure is written as PNG and PDF), by family:

* :mod:`.phase`: :func:`phase_diagram`, a heat map of one observable over the (T, h) grid of a
  sweep with the phase boundaries drawn and labelled by method; :func:`phase_diagrams` draws
  chi, <|m|> and C side by side.
* :mod:`.curves`: :func:`observable_curves`, observables against T with error bars, one curve
  per field h.
* :mod:`.head_maps`: :func:`head_grid`, a layer x head heat map of a per-head value.
* :mod:`.files`: :func:`plot_file` / :func:`plot_files`, every figure a spinsim HDF5 file
  supports (``spinsim plot``); :func:`plot_sweep`, :func:`plot_result`.
* :mod:`.style`: the rc style, observable labels (:data:`LABELS`) and :func:`save`.

Functions given a ``stem`` save PNG + PDF and return the paths; without one they return the
Figure (or Axes) so that callers and tests can read its content.
"""
from .style import LABELS, STYLE, save
from .phase import draw_boundaries, phase_diagram, phase_diagrams
from .curves import observable_curves
from .head_maps import head_grid
from .files import plot_file, plot_files, plot_result, plot_sweep

__all__ = ["STYLE", "save", "phase_diagram", "phase_diagrams", "draw_boundaries", "observable_curves", "head_grid",
           "plot_sweep", "plot_result", "plot_file", "plot_files", "LABELS"]
