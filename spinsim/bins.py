"""Binned Monte Carlo series: what a run keeps besides its estimates, so that users can rebin,
jackknife and reweight later (issue 13).

Per grid point (``T``, or ``h`` x ``T``) and per chain, a :class:`Bins` holds

* bin means over ``bin_length`` consecutive measured sweeps (at least :data:`MIN_BINS` = 64
  bins per chain when the run has that many sweeps; ``n_meas // bin_length`` bins, the first
  ``n_meas % bin_length`` sweeps after the discarded ones dropped, as the estimators drop them):
  ``E`` (total energy), ``E2`` (of ``(E - E_shift)^2``, with ``E_shift`` the point's mean
  energy, so that C has no cancellation; ``<E^2> = E2 + 2 E_shift E - E_shift^2``), ``mabs``
  (|m|), ``m2`` (|m|^2), ``m4`` (|m|^4), ``mu`` (m.u), ``mu2`` ((m.u)^2);
* a thinned copy of the measured series for histogram reweighting (:mod:`spinsim.reweight`):
  ``samples_E``, ``samples_mabs``, ``samples_mu`` (grid, chain, sample), ``samples_per_bin``
  samples taken every ``sample_stride`` sweeps inside each bin (sample ``s`` lies in bin
  ``s // samples_per_bin``), at most :data:`SAMPLES_PER_CHAIN` per chain.

The integrated autocorrelation time of each point (``Result.tau_int``, sweeps) and the discarded
equilibration length (``Result.n_discard``, sweeps) sit beside the bins in the same result and
file. Definitions of m, m.u and the observables: :mod:`spinsim.schema`. :func:`estimates` recomputes
every observable with an error from the bins with a jackknife over the pooled (chain, bin)
blocks (:meth:`spinsim.Result.rebin` merges neighbouring bins first). HDF5 layout: the datasets
``bin_<name>`` and ``sample_<name>`` next to the observables, over the grid dims and the scales
``chain``, ``bin`` and ``sample`` (:meth:`Bins.write_group`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import schema
from .derived import derived_estimates

__all__ = ["Bins", "MIN_BINS", "SAMPLES_PER_CHAIN", "BIN_FIELDS", "SAMPLE_FIELDS", "bin_series",
           "estimates", "NoBinsError"]

#: fewest bins per chain kept (when the run has at least that many measured sweeps)
MIN_BINS = 64
#: most samples per chain kept for reweighting (the series thinned inside each bin)
SAMPLES_PER_CHAIN = 1024

#: bin-mean datasets: name -> (units, long name)
BIN_FIELDS: dict[str, tuple[str, str]] = {
    "E": ("energy (total)", "bin mean of the total energy E"),
    "E2": ("energy^2 (total)", "bin mean of (E - E_shift)^2 (E_shift: the point's mean energy)"),
    "mabs": ("spin length", "bin mean of |m|"),
    "m2": ("spin length^2", "bin mean of |m|^2"),
    "m4": ("spin length^4", "bin mean of |m|^4"),
    "mu": ("spin length", "bin mean of m.u"),
    "mu2": ("spin length^2", "bin mean of (m.u)^2"),
}
#: sample datasets: name -> (units, long name)
SAMPLE_FIELDS: dict[str, tuple[str, str]] = {
    "E": ("energy (total)", "total energy E of a measured sweep (thinned series)"),
    "mabs": ("spin length", "|m| of a measured sweep (thinned series)"),
    "mu": ("spin length", "m.u of a measured sweep (thinned series)"),
}


class NoBinsError(ValueError):
    """A result without binned series (exact or analytic, or a file written before bins)."""


@dataclass(eq=False)
class Bins:
    """Binned series of a Monte Carlo result (module docstring). Arrays: ``bins[name]`` of shape
    grid + (n_chains, n_bins), ``samples[name]`` grid + (n_chains, n_samples), ``E_shift`` grid.
    ``bin_length`` and ``sample_stride`` in sweeps; ``samples_per_bin`` samples per bin."""

    bins: dict[str, np.ndarray]
    E_shift: np.ndarray
    bin_length: int
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    sample_stride: int = 1
    samples_per_bin: int = 0

    def __post_init__(self) -> None:
        missing = sorted(set(BIN_FIELDS) - set(self.bins))
        if missing:
            raise ValueError(f"Bins needs every bin field {', '.join(BIN_FIELDS)}; missing: {', '.join(missing)}")
        self.bins = {k: np.asarray(self.bins[k], dtype=np.float64) for k in BIN_FIELDS}
        self.samples = {k: np.asarray(v, dtype=np.float64) for k, v in self.samples.items()}
        self.E_shift = np.asarray(self.E_shift, dtype=np.float64)
        self.bin_length, self.sample_stride = int(self.bin_length), int(self.sample_stride)
        self.samples_per_bin = int(self.samples_per_bin)
        shape = self.bins["E"].shape
        for k, v in self.bins.items():
            if v.shape != shape:
                raise ValueError(f"bin field {k!r} has shape {v.shape}, 'E' has {shape}")
        if self.E_shift.shape != shape[:-2]:
            raise ValueError(f"E_shift has shape {self.E_shift.shape}, the grid is {shape[:-2]}")
        for k, v in self.samples.items():
            if v.shape[:-1] != shape[:-1]:
                raise ValueError(f"sample field {k!r} has shape {v.shape}: grid and chains must be {shape[:-1]}")

    @property
    def grid_shape(self) -> tuple[int, ...]:
        return self.bins["E"].shape[:-2]

    @property
    def n_chains(self) -> int:
        return self.bins["E"].shape[-2]

    @property
    def n_bins(self) -> int:
        return self.bins["E"].shape[-1]

    @property
    def has_samples(self) -> bool:
        return bool(self.samples) and self.samples_per_bin > 0

    def take(self, index: Any) -> "Bins":
        """The bins of part of the grid (``index`` into the grid dims, e.g. a sweep's row k)."""
        return Bins({k: v[index] for k, v in self.bins.items()}, self.E_shift[index], self.bin_length,
                    {k: v[index] for k, v in self.samples.items()}, self.sample_stride, self.samples_per_bin)

    def rebinned(self, factor: int) -> "Bins":
        """Neighbouring bins merged ``factor`` at a time (bin means averaged; a tail of fewer than
        ``factor`` bins dropped from the start, the least equilibrated). Samples are kept as they
        are (``samples_per_bin`` grows by ``factor``). Raises ValueError for a factor < 1 or larger
        than the number of bins."""
        if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or not 1 <= factor <= self.n_bins:
            raise ValueError(f"rebin factor must be an integer in 1..{self.n_bins} (the bins per chain), "
                             f"got {factor!r}")
        factor = int(factor)
        nb = self.n_bins // factor
        head = self.n_bins - nb * factor

        def merge(v: np.ndarray) -> np.ndarray:
            return v[..., head:].reshape(v.shape[:-1] + (nb, factor)).mean(axis=-1)

        spb = self.samples_per_bin
        samples = {k: v[..., head * spb:] for k, v in self.samples.items()}
        return Bins({k: merge(v) for k, v in self.bins.items()}, self.E_shift, self.bin_length * factor,
                    samples, self.sample_stride, spb * factor)

    # ------------------------------------------------------------------ HDF5
    def write_group(self, g: Any, dims: tuple[str, ...], samples: bool = True) -> None:
        """Write into the result group ``g`` (whose grid scales ``dims`` exist): the scales
        ``chain``, ``bin`` (and ``sample``), ``bin_<name>`` over dims + (chain, bin), ``E_shift``
        over dims, ``sample_<name>`` over dims + (chain, sample); attributes ``bin_length``,
        ``sample_stride``, ``samples_per_bin``. ``samples=False``: the bins only (an unfinished
        sweep keeps its samples beside the file, :mod:`spinsim.phase.samples`)."""
        from .io import write_axis, write_values

        write_axis(g, "chain", np.arange(self.n_chains), "index", "independent Monte Carlo chain")
        write_axis(g, "bin", np.arange(self.n_bins), "index",
                   f"bin of {self.bin_length} consecutive measured sweeps")
        g.attrs["bin_length"] = self.bin_length
        for k, (units, long_name) in BIN_FIELDS.items():
            write_values(g, "bin_" + k, self.bins[k], dims + ("chain", "bin"), units, long_name,
                         bin_length=self.bin_length)
        write_values(g, "E_shift", self.E_shift, dims, "energy (total)",
                     "energy subtracted before squaring in bin_E2 (the point's mean energy)")
        if self.has_samples and samples:
            n = next(iter(self.samples.values())).shape[-1]
            write_axis(g, "sample", np.arange(n), "index",
                       f"thinned measurement: every {self.sample_stride} sweeps, "
                       f"{self.samples_per_bin} per bin (bin = sample // {self.samples_per_bin})")
            g.attrs["sample_stride"] = self.sample_stride
            g.attrs["samples_per_bin"] = self.samples_per_bin
            for k, v in self.samples.items():
                units, long_name = SAMPLE_FIELDS[k]
                write_values(g, "sample_" + k, v, dims + ("chain", "sample"), units, long_name,
                             sample_stride=self.sample_stride, samples_per_bin=self.samples_per_bin)

    @classmethod
    def read_group(cls, g: Any) -> "Bins | None":
        """The bins stored in ``g`` by :meth:`write_group`, or None (a file without bins)."""
        if "bin_E" not in g:
            return None
        bins = {k: g["bin_" + k][()] for k in BIN_FIELDS}
        samples = {k: g["sample_" + k][()] for k in SAMPLE_FIELDS if "sample_" + k in g}
        return cls(bins, g["E_shift"][()], int(g.attrs["bin_length"]), samples,
                   int(g.attrs.get("sample_stride", 1)), int(g.attrs.get("samples_per_bin", 0)))


def bin_series(E: np.ndarray, mabs: np.ndarray, mu: np.ndarray,
               samples_per_chain: int = SAMPLES_PER_CHAIN) -> tuple[dict[str, np.ndarray], float, int,
                                                                     dict[str, np.ndarray], int, int]:
    """Bins of one grid point's series, each (n_chains, n_meas): returns ``(bins, E_shift,
    bin_length, samples, sample_stride, samples_per_bin)`` with ``bins[name]`` (n_chains, n_bins)
    and ``samples[name]`` (n_chains, n_samples). ``bin_length = max(1, n_meas // MIN_BINS)``."""
    E, mabs, mu = (np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in (E, mabs, mu))
    n_chains, n_meas = E.shape
    bin_len = max(1, n_meas // MIN_BINS)
    nb = n_meas // bin_len
    head = n_meas - nb * bin_len
    shift = float(np.mean(E[:, head:]))

    def cut(x: np.ndarray) -> np.ndarray:
        return x[:, head:].reshape(n_chains, nb, bin_len)

    e, m, u = cut(E), cut(mabs), cut(mu)
    m2 = m * m
    bins = {"E": e.mean(-1), "E2": ((e - shift) ** 2).mean(-1), "mabs": m.mean(-1), "m2": m2.mean(-1),
            "m4": (m2 * m2).mean(-1), "mu": u.mean(-1), "mu2": (u * u).mean(-1)}
    per_bin = max(1, samples_per_chain // nb)
    stride = max(1, bin_len // per_bin)
    spb = bin_len // stride
    samples = {k: x[:, :, ::stride][:, :, :spb].reshape(n_chains, nb * spb)
               for k, x in (("E", e), ("mabs", m), ("mu", u))} if samples_per_chain > 0 else {}
    return bins, shift, bin_len, samples, stride, (spb if samples else 0)


def estimates(b: Bins, T: np.ndarray, n_free: int, n_comp: int) -> dict[str, np.ndarray]:
    """Every observable of :data:`spinsim.schema.OBSERVABLES` with an error, and its jackknife
    error, from the bins (chains and bins pooled into n_chains * n_bins blocks); definitions and
    the jackknife in :mod:`spinsim.derived`. ``T`` broadcasts against the grid (e.g. (n_T,) for an
    (n_h, n_T) grid)."""
    pooled = {k: v.reshape(v.shape[:-2] + (-1,)) for k, v in b.bins.items()}
    beta = 1.0 / np.broadcast_to(np.asarray(T, dtype=np.float64), b.grid_shape)
    c = b.E_shift
    moments = {"E": pooled["E"] - c[..., None], "E2": pooled["E2"], "mabs": pooled["mabs"], "m2": pooled["m2"],
               "m4": pooled["m4"], "mu": pooled["mu"], "mu2": pooled["mu2"]}
    out = derived_estimates(moments, beta, n_free, n_comp, shift={"E": c})
    return {k: np.asarray(out[k]) for k in schema.names(has_error=True, errors=True)}
