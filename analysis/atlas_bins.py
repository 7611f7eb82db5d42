"""The binned Monte Carlo series of an atlas's rows (issue 13's bins), stored as a sweep stores them.

Every atlas row (one system, one field h) is one Monte Carlo solve over the temperature grid, and
keeps its :class:`spinsim.bins.Bins` over T: bin means, ``E_shift`` and the thinned samples that
rebinning, the jackknife and histogram reweighting (:mod:`spinsim.reweighting`) read. The sweep
doubling (:mod:`.atlas_adapt`: rows that keep bins double whole) gives rows of different lengths,
and a row's bin length and sample
stride follow its length (:func:`spinsim.bins.bin_series`), so rows are stored in groups of one
binning each, one group per number of measured sweeps::

    /bins/sweeps_<n>                attrs sweeps; the rows that ran n measured sweeps per chain
        row (row)                   flat row index over (head, length, sample, h) (ROW_SEEDING's
                                    order: numpy.ravel_multi_index), a dimension scale
        T (T)                       the temperature grid
        bin_<name>, E_shift, sample_<name>, chain, bin, sample
                                    written by :meth:`spinsim.bins.Bins.write_group` over
                                    (row, T), exactly as a sweep's over (h, T)

(beside /atlas, not in it: its scale ``sample`` of thinned measurements is not /atlas's quenched
``sample``, and netCDF readers such as xarray's datatree give a group its parents' dimensions).

:meth:`spinsim.analysis.atlas_store.Atlas.row` gives a row back as a :class:`spinsim.Result` over
T with its bins, as :meth:`spinsim.phase.SweepResult.row` gives a sweep's row: what reweighting
reads. Rows stored before bins existed (older files) have none.
"""
from __future__ import annotations

import h5py
import numpy as np

from spinsim.bins import Bins
from spinsim.io import write_axis
from spinsim.schema import T_UNITS

__all__ = ["write_bins", "read_bins", "BINS_GROUP"]

BINS_GROUP = "bins"


def _stack(rows: list[Bins]) -> Bins:
    """Row bins (each over T) stacked over a leading row axis; ValueError when their binnings
    differ (the rows of one group must share bin length, bins, chains and sample layout)."""
    b0 = rows[0]
    for b in rows[1:]:
        if (b.bins["E"].shape != b0.bins["E"].shape or b.bin_length != b0.bin_length
                or b.sample_stride != b0.sample_stride or b.samples_per_bin != b0.samples_per_bin
                or {k: v.shape for k, v in b.samples.items()} != {k: v.shape for k, v in b0.samples.items()}):
            raise ValueError(f"rows of one sweep count with different binnings: {b.bins['E'].shape} of "
                             f"{b.bin_length} sweeps vs {b0.bins['E'].shape} of {b0.bin_length}")
    return Bins({k: np.stack([b.bins[k] for b in rows]) for k in b0.bins}, np.stack([b.E_shift for b in rows]),
                b0.bin_length, {k: np.stack([b.samples[k] for b in rows]) for k in b0.samples},
                b0.sample_stride, b0.samples_per_bin)


def write_bins(g: h5py.Group, T: np.ndarray, row_bins: dict[int, Bins], sweeps: np.ndarray) -> None:
    """Write ``row_bins`` (flat row index -> the row's Bins over T) into ``g/bins`` (g: the file's
    root; layout in the module docstring); ``sweeps`` the atlas's (head, length, sample, h)
    measured sweeps per row."""
    if not row_bins:
        return
    top = g.create_group(BINS_GROUP)
    top.attrs["long_name"] = "binned Monte Carlo series of the rows, one group per number of measured sweeps"
    flat = np.ravel(sweeps)
    by_sweeps: dict[int, list[int]] = {}
    for r in sorted(row_bins):
        by_sweeps.setdefault(int(flat[r]), []).append(r)
    for n, rows in sorted(by_sweeps.items()):
        b = top.create_group(f"sweeps_{n}")
        b.attrs["sweeps"] = n
        write_axis(b, "row", np.array(rows, np.int64), "index",
                   "flat row index over (head, length, sample, h), numpy.ravel_multi_index order")
        write_axis(b, "T", T, T_UNITS, "temperature")
        _stack([row_bins[r] for r in rows]).write_group(b, ("row", "T"))


def read_bins(g: h5py.Group) -> dict[int, Bins]:
    """The row bins stored in ``g/bins`` by :func:`write_bins` (empty when there are none)."""
    out: dict[int, Bins] = {}
    if BINS_GROUP not in g:
        return out
    for b in g[BINS_GROUP].values():
        stacked = Bins.read_group(b)
        if stacked is None:
            continue
        for j, r in enumerate(b["row"][()]):
            out[int(r)] = stacked.take(j)
    return out
