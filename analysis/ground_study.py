"""Ground states, level gaps and spin-wave spectra of every head of a model (issue 7 item 4).

For each head (layer, head) a free-spin Hamiltonian ``H = -sum_{i>j} x_i^T M x_j - sum_i h_i . x_i``
(``M = scale W_Q W_K^T``, causal bonds, spins ``S_i = m_i sigma_i`` with ``m_i = |x_i|`` fixed)
is built by a callable ``build_H(layer, head)``, solved with ``solve(H, method="ground")``
(quench from ``restarts`` random starts) and its excitation spectrum computed at the best state
(:func:`spinsim.solvers.ground.excitations`). Per head the study keeps:

    E0                 ground energy (total energy of H, energy units = attention-score units)
    gap                energy between the two lowest distinct local minima found (NaN: one found)
    n_minima           distinct local minima found over the restarts
    best_hit_fraction  fraction of restarts ending in the best minimum (a confidence)
    n_zero_modes       Hessian eigenvalues |lambda| <= zero_tol (the Goldstone count)
    spin_wave_gap      smallest Hessian eigenvalue > zero_tol (energy per radian^2)
    n_negative_modes   eigenvalues < -zero_tol (0 at a true local minimum)
    max_torque         max_k |phi_k perp sigma_k| / max_k |phi_k| (0 at a stationary state)

Inputs (what the spins are): any ``head_system`` input of a loaded model (``residual``,
``embed``, ``embed+pos``), or ``pos``: the positional inputs of a GPT-2 checkpoint,
``x_p = LayerNorm_1^(layer)(wpe[p])`` for p = 0..N-1, the input each layer would see from the
position embedding alone. ``pos`` needs only the attention weights, ``ln_1`` and ``wpe``, so it
runs on attention-only checkpoints (``../shared/gpt2-small``). Query/key biases enter exactly as
in ``head_system``: per-site fields ``a = scale W_Q b_K`` (per bond as query) and
``b = scale W_K b_Q`` (per bond as key), and a constant ``-scale b_Q.b_K`` per bond recorded in
``H.provenance["energy_constant"]`` (not part of E0); one builder
(:func:`spinsim.models.hamiltonians.build_head_system`) makes every head Hamiltonian.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from spinsim.io import REQUIRED, stored

ARRAYS = ("E0", "gap", "n_minima", "best_hit_fraction", "n_zero_modes", "spin_wave_gap", "n_negative_modes",
          "max_torque")
POS_INPUT = "pos"
_HEADS = ("layer", "head")


def _grid(units: str, long_name: str) -> Any:
    return stored(_HEADS, units, long_name, default=REQUIRED)


@dataclass
class GroundStudy:
    """Per-head ground-state results; every array has shape (n_layers, n_heads).

    Stored (:func:`write_ground_group`) as the field metadata declares: the arrays over the
    ``layer`` and ``head`` dimension scales with units and long names, the settings as attributes.
    """

    E0: np.ndarray = _grid("energy units", "ground energy (total energy of the head's H)")
    gap: np.ndarray = _grid("energy units", "energy between the two lowest distinct local minima found (nan: one found)")
    n_minima: np.ndarray = _grid("1", "distinct local minima found over the restarts")
    best_hit_fraction: np.ndarray = _grid("1", "fraction of restarts ending in the best minimum")
    n_zero_modes: np.ndarray = _grid("1", "zero modes of the tangent-space Hessian at the ground state (Goldstone count)")
    spin_wave_gap: np.ndarray = _grid("energy units / rad^2", "smallest nonzero Hessian eigenvalue (spin-wave gap)")
    n_negative_modes: np.ndarray = _grid("1", "negative Hessian eigenvalues (0 at a local minimum)")
    max_torque: np.ndarray = _grid("1", "max_k |phi_k perp sigma_k| / max_k |phi_k| at the ground state (0: stationary)")
    restarts: int = stored(default=REQUIRED)
    seed: int = stored(default=REQUIRED)
    n_modes: int = stored(default=REQUIRED)
    seconds: float = stored(default=REQUIRED)
    n_sites: int = stored(default=0)
    n_comp: int = stored(default=0)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.E0.shape)  # type: ignore[return-value]

    def summary(self) -> dict[str, Any]:
        """Plain numbers: Goldstone-count histogram, median spin-wave gap, stationarity."""
        z = self.n_zero_modes[np.isfinite(self.n_zero_modes)].astype(int)
        vals, cnts = np.unique(z, return_counts=True)
        g = self.spin_wave_gap[np.isfinite(self.spin_wave_gap)]
        return {"n_heads": int(self.E0.size), "n_finite_E0": int(np.isfinite(self.E0).sum()),
                "goldstone_counts": {int(v): int(c) for v, c in zip(vals, cnts)},
                "median_spin_wave_gap": float(np.median(g)) if g.size else float("nan"),
                "min_spin_wave_gap": float(g.min()) if g.size else float("nan"),
                "max_spin_wave_gap": float(g.max()) if g.size else float("nan"),
                "n_not_minimum": int((self.n_negative_modes > 0).sum()),
                "max_torque": float(np.nanmax(self.max_torque)),
                "median_best_hit_fraction": float(np.nanmedian(self.best_hit_fraction)),
                "seconds": float(self.seconds)}


def ground_study(shape: Any, build_H: Callable[[int, int], Any], restarts: int = 8, seed: int = 0,
                 n_modes: int = 6, log: Callable[[str], None] | None = None, **meta: Any) -> GroundStudy:
    """Ground state, level gap and lowest excitations of every head.

    shape: a HeadSet (its n_layers, n_heads) or ``(n_layers, n_heads)``; build_H(layer, head) ->
    a free-spin O(n) Hamiltonian (e.g. :func:`model_builder`, :func:`positional_builder`).
    Every head uses the same ``seed`` (restart q of every head starts from ``[seed, q]``).
    """
    from spinsim.solvers import solve
    from spinsim.solvers.ground import excitations
    from spinsim.threads import one_blas_thread

    L, Hn = (shape.n_layers, shape.n_heads) if hasattr(shape, "n_layers") else (int(shape[0]), int(shape[1]))
    out = {k: np.full((L, Hn), np.nan) for k in ARRAYS}
    t0 = time.perf_counter()
    n_sites = n_comp = 0
    for l in range(L):
        for h in range(Hn):
            with one_blas_thread():                # small products (spinsim.threads)
                H = build_H(l, h)
                n_sites, n_comp = H.n_sites, H.n_comp
                r = solve(H, method="ground", restarts=restarts, seed=seed)
                ex = excitations(H, r.ground_states[0], n_modes=n_modes, method="eigsh")
            out["E0"][l, h] = r.ground_energy
            out["gap"][l, h] = np.nan if r.gap is None else r.gap
            out["n_minima"][l, h] = r.meta["n_minima"]
            out["best_hit_fraction"][l, h] = r.meta["best_hit_fraction"]
            out["n_zero_modes"][l, h] = ex.n_zero_modes
            out["spin_wave_gap"][l, h] = ex.spin_wave_gap
            out["n_negative_modes"][l, h] = ex.n_negative_modes
            out["max_torque"][l, h] = ex.max_torque
        if log is not None:
            log(f"layer {l}: {Hn} heads done ({time.perf_counter() - t0:.1f} s)")
    return GroundStudy(**out, restarts=int(restarts), seed=int(seed), n_modes=int(n_modes),
                       seconds=time.perf_counter() - t0, n_sites=int(n_sites), n_comp=int(n_comp), meta=dict(meta))


def model_builder(lm: Any, prompt: str, input: str = "residual", heads: Any = None) -> Callable[[int, int], Any]:
    """``build_H`` for a loaded model: ``head_system(lm, (l, h), prompt, input=input).H``."""
    from spinsim.models.hamiltonians import head_system

    return lambda l, h: head_system(lm, (l, h), prompt, input=input, heads=heads).H


def positional_inputs(weights: Any, layer: int, n_positions: int) -> np.ndarray:
    """``LayerNorm_1^(layer)(wpe[p])`` for p = 0..n_positions-1, (n_positions, d_model) float64 (GPT-2)."""
    from spinsim.models import arch

    w = getattr(weights, "weights", weights)
    P = arch.position_matrix(w)
    if P is None:
        raise ValueError(f"input {POS_INPUT!r} needs a learned position embedding (GPT-2 wpe); "
                         f"{w.family} models have none")
    if not 1 <= n_positions <= P.shape[0]:
        raise ValueError(f"n_positions must be in 1..{P.shape[0]}, got {n_positions}")
    x = np.asarray(P[:n_positions], np.float64)
    g = np.asarray(w.get(f"h.{layer}.ln_1.weight"), np.float64)
    b = np.asarray(w.get(f"h.{layer}.ln_1.bias"), np.float64)
    eps = float(w.config.get("layer_norm_epsilon", 1e-5))
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * g + b


def positional_hamiltonian(weights: Any, hw: Any, n_positions: int) -> Any:
    """The free-spin Hamiltonian of one GPT-2 head whose spins are the positional inputs
    (see the module docstring): :func:`spinsim.models.hamiltonians.build_head_system` with
    input ``'pos'``, causal W, exact query/key biases as fields (energy constant in
    ``H.provenance["energy_constant"]``)."""
    from spinsim.models.hamiltonians import build_head_system

    X = positional_inputs(weights, hw.layer, n_positions)
    w = getattr(weights, "weights", weights)
    return build_head_system(hw, X, model_id=w.model_id, weights_sha256=w.weights_sha256, input=POS_INPUT,
                             biases="exact", provenance={"n_positions": int(X.shape[0])}).H


def positional_builder(weights: Any, heads: Any, n_positions: int = 32) -> Callable[[int, int], Any]:
    """``build_H`` for the positional inputs of a GPT-2 checkpoint (weights or loaded model)."""
    return lambda l, h: positional_hamiltonian(weights, heads.head(l, h), n_positions)


# ---------------------------------------------------------------- comparisons
def compare_ferro(gs: GroundStudy, ferro_class: Any) -> dict[str, Any]:
    """Spin-wave gap and Goldstone count by the head's ferro/antiferro class (spectrum of M_s):
    per class the head count, median gap and mean zero-mode count, and the Mann-Whitney p of the
    gaps between classes (two-sided; NaN when a class is empty)."""
    from scipy.stats import mannwhitneyu

    cls = np.asarray(ferro_class).astype(str)
    out: dict[str, Any] = {}
    groups = {}
    for c in ("ferro", "antiferro"):
        m = (cls == c) & np.isfinite(gs.spin_wave_gap)
        groups[c] = gs.spin_wave_gap[m]
        out[f"n_{c}"] = int((cls == c).sum())
        out[f"median_spin_wave_gap_{c}"] = float(np.median(groups[c])) if m.any() else float("nan")
        z = gs.n_zero_modes[cls == c]
        out[f"mean_zero_modes_{c}"] = float(np.mean(z)) if z.size else float("nan")
    if groups["ferro"].size and groups["antiferro"].size:
        out["mannwhitney_p_gap"] = float(mannwhitneyu(groups["ferro"], groups["antiferro"]).pvalue)
    else:
        out["mannwhitney_p_gap"] = float("nan")
    return out


def read_ablation_effect(path: Any, mode: str = "zero") -> np.ndarray:
    """Mean |measured shift of dL| over prompts, (layer, head), from a ``spinsim gaps --ablation`` file."""
    import warnings

    import h5py

    with h5py.File(path, "r") as f:
        key = f"ablation/{mode}/measured"
        if key not in f:
            raise ValueError(f"{path}: no /{key} (write it with 'spinsim gaps --ablation {mode}')")
        meas = np.asarray(f[key], float)
    if meas.ndim != 3:
        raise ValueError(f"{path}: /{key} must be (prompt, layer, head), got shape {meas.shape}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)            # heads never ablated: all-NaN
        return np.nanmean(np.abs(meas), axis=0)


def compare_ablation(gs: GroundStudy, effect: np.ndarray) -> dict[str, Any]:
    """Spearman rho of |spin-wave gap| with the mean |ablation shift| across heads (finite pairs)."""
    from scipy.stats import spearmanr

    effect = np.asarray(effect, float)
    if effect.shape != gs.shape:
        raise ValueError(f"ablation effect has shape {effect.shape}, the study {gs.shape}: not the same model")
    x, y = np.abs(gs.spin_wave_gap).ravel(), effect.ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return {"ablation_spearman_rho": float("nan"), "ablation_spearman_p": float("nan"), "ablation_n_heads": int(ok.sum())}
    r = spearmanr(x[ok], y[ok])
    return {"ablation_spearman_rho": float(r.statistic), "ablation_spearman_p": float(r.pvalue),
            "ablation_n_heads": int(ok.sum())}


# ---------------------------------------------------------------- HDF5 and figure
def write_ground_group(g: Any, gs: GroundStudy, **attrs: Any) -> None:
    """Write ``gs`` into the open h5py group ``g`` through :func:`spinsim.io.write_record`: the
    arrays over (layer, head), the settings, ``gs.meta`` and ``attrs`` (e.g. comparisons) as
    attributes of ``g``. The ``layer`` and ``head`` scales are those of ``g`` or of the file's
    root when present, else written into ``g``."""
    from spinsim.io import to_attr, write_axis, write_record

    L, Hn = gs.shape
    for name, n, long_name in (("layer", L, "layer index (from 0)"), ("head", Hn, "head index within the layer (from 0)")):
        if name not in g and name not in g.file:
            write_axis(g, name, np.arange(n), "1", long_name)
    write_record(g, gs)
    for k, v in {**gs.meta, **attrs}.items():
        g.attrs[k] = to_attr(v)


def write_ground_study(path: Any, gs: GroundStudy, **attrs: Any) -> None:
    """Write ``/ground/<name>`` (layer, head) with ``layer`` and ``head`` dimension scales at the
    root and the study's settings and ``attrs`` (e.g. comparisons) as attributes of ``/ground``
    (:func:`write_ground_group`); atomic."""
    from spinsim.io import atomic_h5, root_attrs, write_axis

    L, Hn = gs.shape
    with atomic_h5(path) as f:
        f.attrs.update(root_attrs("ground_study"))
        write_axis(f, "layer", np.arange(L), "1", "layer index (from 0)")
        write_axis(f, "head", np.arange(Hn), "1", "head index within the layer (from 0)")
        write_ground_group(f.create_group("ground"), gs, **attrs)


#: dataset names of the demo's /ground before spinsim 0.2.1 -> GroundStudy fields
_OLD_NAMES = {"zero_modes": "n_zero_modes", "hit_fraction": "best_hit_fraction"}


def read_ground_group(g: Any) -> GroundStudy:
    """A :class:`GroundStudy` from a group written by :func:`write_ground_group` (or by an older
    ``spinsim ground`` / demo: older dataset names are mapped, arrays missing there read as NaN
    and settings missing as 0). Attributes that are not fields go to ``meta``."""
    import dataclasses

    from spinsim.io import from_attr, read_record

    kw = read_record(GroundStudy, g)
    for old, new in _OLD_NAMES.items():
        if old in g and new not in kw:
            kw[new] = g[old][()]
    shape = np.shape(kw["E0"])
    for name in ARRAYS:
        kw[name] = np.asarray(kw.get(name, np.full(shape, np.nan)), float)
    for name in ("restarts", "seed", "n_modes", "seconds"):
        kw.setdefault(name, 0)
    names = {f.name for f in dataclasses.fields(GroundStudy)}
    kw["meta"] = {k: from_attr(v) for k, v in g.attrs.items() if k not in names}
    return GroundStudy(**kw)


def read_ground_study(path: Any) -> GroundStudy:
    """Read the ``/ground`` group of a ``spinsim ground`` file or a demo's ``study.h5``; raises
    :class:`spinsim.io.SpinsimFileError` when the file is not spinsim's or has no ``/ground``."""
    from spinsim.io import SpinsimFileError, open_spinsim

    with open_spinsim(path) as f:
        if "ground" not in f:
            raise SpinsimFileError(f"{path}: no /ground group (groups: {', '.join(f.keys())})")
        return read_ground_group(f["ground"])


def plot_ground_study(gs: GroundStudy, stem: Any = None, formats: tuple[str, ...] = ("png", "pdf"),
                      title: str | None = None) -> Any:
    """Two layer x head grids: log10 spin-wave gap and Goldstone (zero-mode) count; saved to
    ``stem.<fmt>`` when ``stem`` is given. Returns the figure."""
    import matplotlib.pyplot as plt

    from . import figures as F

    L, Hn = gs.shape
    fig, axes = plt.subplots(1, 2, figsize=(2 * max(5.0, 0.55 * Hn + 1.5), max(4.0, 0.3 * L + 1.5)),
                             constrained_layout=True)
    F.head_grid(np.log10(np.abs(gs.spin_wave_gap) + 1e-12), ax=axes[0], center=None, cmap="viridis",
                label="log10 spin-wave gap", annotate=False, symmetric=False,
                title="lowest nonzero excitation (log10, energy units)")
    F.head_grid(gs.n_zero_modes, ax=axes[1], center=None, cmap="magma", label="zero modes",
                annotate=L * Hn <= 300, fmt="{:.0f}", title="Goldstone (zero-mode) count", symmetric=False)
    if title:
        fig.suptitle(title)
    if stem is not None:
        F.save(fig, stem, formats=formats)
    return fig
