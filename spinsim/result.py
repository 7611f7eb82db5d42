"""The one result type returned by every solver (exact, analytic, mc, ground).

All arrays run over the temperature axis ``T`` (shape (n_T,)) unless stated. Conventions:

* ``energy``: <E> / n_free, energy per free site (k_B = 1).
* ``specific_heat``: (<E^2> - <E>^2) / (T^2 n_free), per free site.
* ``magnetization``: <|m|>, with ``m = (1/n_free) sum_{free i} S_i`` (an n_comp-vector).
* ``susceptibility``: n_free (<|m|^2> - <|m|>^2) / T  (the finite-size estimator from |m|).
* ``binder``: U_n = 1 - n <|m|^4> / ((n + 2) <|m|^2>^2), n = n_comp: 0 for a Gaussian
  (disordered) m, 2/(n+2) for a fully ordered one (n = 1: the usual 1 - <m^4>/(3<m^2>^2)).
* ``projection``: <m_u> with ``m_u = (1/n_free) sum_{free i} S_i . u_i`` along a given direction;
  ``projection_susceptibility`` = n_free (<m_u^2> - <m_u>^2) / T.
* ``*_err``: one standard error (0 for exact and analytic results).
* ``tau_int``: integrated autocorrelation time of E in sweeps (MC only; None otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .io import atomic_h5, from_attr, open_spinsim, root_attrs, to_attr, write_axis, write_values

__all__ = ["Result", "OBSERVABLES"]

# name -> (units, long name)
OBSERVABLES: dict[str, tuple[str, str]] = {
    "energy": ("energy per site", "mean energy per free site <E>/N"),
    "specific_heat": ("1 per site (k_B = 1)", "specific heat per free site"),
    "magnetization": ("spin length", "mean modulus of the magnetisation <|m|>"),
    "susceptibility": ("1/energy", "susceptibility N(<m^2>-<|m|>^2)/T"),
    "binder": ("dimensionless", "Binder cumulant 1 - n<m^4>/((n+2)<m^2>^2)"),
    "projection": ("spin length", "mean magnetisation along the direction u, <m.u>"),
    "projection_susceptibility": ("1/energy", "N(<m_u^2>-<m_u>^2)/T"),
    "log_Z": ("dimensionless", "log partition function"),
    "acceptance": ("fraction", "acceptance rate of the local moves"),
    "tau_int": ("sweeps", "integrated autocorrelation time of E"),
}
_WITH_ERR = ("energy", "specific_heat", "magnetization", "susceptibility", "binder", "projection",
             "projection_susceptibility")


def _arr(x: Any) -> np.ndarray | None:
    return None if x is None else np.asarray(x, dtype=np.float64)


@dataclass
class Result:
    """Thermodynamics of one Hamiltonian over a temperature grid (see module docstring)."""

    T: np.ndarray
    energy: np.ndarray
    energy_err: np.ndarray
    specific_heat: np.ndarray
    specific_heat_err: np.ndarray
    magnetization: np.ndarray
    magnetization_err: np.ndarray
    susceptibility: np.ndarray
    susceptibility_err: np.ndarray
    binder: np.ndarray
    binder_err: np.ndarray
    method: str
    backend: str = "numpy"
    seed: int | None = None
    n_sites: int = 0
    n_free: int = 0
    n_comp: int = 0
    # optional, method-dependent
    tau_int: np.ndarray | None = None
    acceptance: np.ndarray | None = None
    magnetization_vector: np.ndarray | None = None      # (n_T, n_comp): <m>
    projection: np.ndarray | None = None
    projection_err: np.ndarray | None = None
    projection_susceptibility: np.ndarray | None = None
    projection_susceptibility_err: np.ndarray | None = None
    log_Z: np.ndarray | None = None
    ground_energy: float | None = None                   # total energy E_0
    gap: float | None = None                             # E_1 - E_0 (distinct levels)
    ground_degeneracy: int | None = None
    excited_degeneracy: int | None = None
    ground_states: np.ndarray | None = None              # (n_ground, n_sites, n_comp)
    dos_energy: np.ndarray | None = None                 # distinct (or binned) levels E
    dos_count: np.ndarray | None = None                  # number of states at each
    n_sweeps: int = 0
    n_discard: int = 0
    n_replicas: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.T = np.atleast_1d(np.asarray(self.T, dtype=np.float64))
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (list, tuple)) and f.name not in ("meta",):
                setattr(self, f.name, np.asarray(v, dtype=np.float64))

    # ------------------------------------------------------------------ helpers
    def __len__(self) -> int:
        return int(self.T.size)

    def array_names(self) -> list[str]:
        """Names of the per-temperature arrays present in this result."""
        out = []
        for name in ("energy", "specific_heat", "magnetization", "susceptibility", "binder",
                     "projection", "projection_susceptibility", "log_Z", "acceptance", "tau_int"):
            if getattr(self, name) is not None:
                out.append(name)
        return out

    def summary(self) -> str:
        """A human-readable table: T, E/N, C, <|m|>, chi, U with errors."""
        rows = [f"{self.method}/{self.backend}: {self.n_free} free sites, n_comp={self.n_comp}"
                + (f", seed={self.seed}" if self.seed is not None else "")]
        rows.append(f"{'T':>8} {'E/N':>22} {'C':>22} {'<|m|>':>22} {'chi':>22} {'U':>22}")
        for i, t in enumerate(self.T):
            cells = [f"{getattr(self, k)[i]: .6f} ± {getattr(self, k + '_err')[i]:.1e}"
                     for k in ("energy", "specific_heat", "magnetization", "susceptibility", "binder")]
            rows.append(f"{t:8.4f} " + " ".join(f"{c:>22}" for c in cells))
        if self.ground_energy is not None:
            rows.append(f"E_0 = {self.ground_energy:.10g} (degeneracy {self.ground_degeneracy})"
                        + (f", gap E_1 - E_0 = {self.gap:.10g}" if self.gap is not None else ""))
        return "\n".join(rows)

    # ------------------------------------------------------------------ HDF5
    def write_group(self, g: Any) -> None:
        """Write into an open h5py group: T as a dimension scale, values next to errors."""
        write_axis(g, "T", self.T, "energy (k_B = 1)", "temperature")
        for name in self.array_names():
            units, long = OBSERVABLES[name]
            write_values(g, name, getattr(self, name), ("T",), units, long)
            if name in _WITH_ERR and getattr(self, name + "_err") is not None:
                write_values(g, name + "_err", getattr(self, name + "_err"), ("T",), units,
                             f"standard error of {name}")
        if self.magnetization_vector is not None:
            g.create_dataset("component", data=np.arange(self.n_comp))
            g["component"].make_scale("component")
            write_values(g, "magnetization_vector", self.magnetization_vector, ("T", "component"),
                         "spin length", "mean magnetisation vector <m>")
        if self.ground_states is not None:
            d = g.create_dataset("ground_states", data=self.ground_states)
            d.attrs["dims"] = np.array(["state", "site", "component"], dtype="O")
        if self.dos_energy is not None:
            write_axis(g, "dos_energy", self.dos_energy, "energy (total)", "energy level")
            write_values(g, "dos_count", self.dos_count, ("dos_energy",), "states",
                         "number of states at each energy level (density of states)")
        for k in ("method", "backend", "seed", "n_sites", "n_free", "n_comp", "ground_energy", "gap",
                  "ground_degeneracy", "excited_degeneracy", "n_sweeps", "n_discard", "n_replicas"):
            g.attrs[k] = to_attr(getattr(self, k))
        for k, v in self.meta.items():
            g.attrs["meta_" + k] = to_attr(v)

    @classmethod
    def read_group(cls, g: Any) -> "Result":
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "meta":
                continue
            if f.name in g:
                kw[f.name] = g[f.name][()]
            elif f.name in g.attrs:
                kw[f.name] = from_attr(g.attrs[f.name])
        if "dos_energy" in g:
            kw["dos_energy"] = g["dos_energy"][()]
        kw["meta"] = {k[5:]: from_attr(v) for k, v in g.attrs.items() if k.startswith("meta_")}
        return cls(**kw)

    def to_hdf5(self, path: str | Path, **root: Any) -> Path:
        """Write this result as a self-describing spinsim file (atomically)."""
        with atomic_h5(path) as f:
            for k, v in root_attrs("result", method=self.method, backend=self.backend, seed=self.seed,
                                   **root).items():
                f.attrs[k] = v
            self.write_group(f.create_group("result"))
        return Path(path)

    @classmethod
    def from_hdf5(cls, path: str | Path, group: str = "result") -> "Result":
        with open_spinsim(path) as f:
            if group not in f:
                from .io import SpinsimFileError
                raise SpinsimFileError(f"{path}: no group {group!r} (groups: {', '.join(f.keys())})")
            return cls.read_group(f[group])
