"""The MBAR glue of :mod:`spinsim.reweighting`: pymbar's solver for the free energies, the
per-sample log-denominators and the overlap matrix (Shirts & Chodera, J. Chem. Phys. 129, 124105
(2008)), with pymbar imported quietly when first used.

Conventions: samples E_n (total energy, shifted by a constant), states beta_k = 1/T_k with N_k
samples each, dimensionless free energies f_k = beta_k F_k (f_0 = 0), k_B = 1.
"""
from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

import numpy as np

__all__ = ["ReweightError", "solve", "log_denominator", "overlap", "logsumexp"]


class ReweightError(ValueError):
    """Reweighting cannot give a trustworthy answer (the subclass says why)."""


def _pymbar() -> Any:
    """pymbar, imported without its banners (it prints a JAX notice on import)."""
    logging.getLogger("pymbar").setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import pymbar
    except ImportError:
        raise ImportError("multi-histogram reweighting needs pymbar (a spinsim dependency): "
                          "pip install 'pymbar>=4'") from None
    return pymbar


def solve(E: np.ndarray, beta_k: np.ndarray, state: np.ndarray, f0: np.ndarray | None) -> np.ndarray:
    """MBAR free energies f_k = beta_k F_k (f_0 = 0) of the states beta_k from samples E of states
    ``state`` (pymbar's solver), started from ``f0`` or else from thermodynamic integration of the
    mean energies (d f / d beta = <E>, trapezoids), which is close for a temperature ladder."""
    K = beta_k.size
    if K == 1:
        return np.zeros(1)
    N_k = np.bincount(state, minlength=K).astype(np.float64)
    warm = f0 is not None
    if f0 is None:
        mean = np.bincount(state, weights=E, minlength=K) / N_k
        order = np.argsort(beta_k)
        steps = np.diff(beta_k[order]) * (mean[order][1:] + mean[order][:-1]) / 2
        f0 = np.empty(K)
        f0[order] = np.concatenate([[0.0], np.cumsum(steps)])
    u_kn = beta_k[:, None] * E[None, :]
    pymbar = _pymbar()
    if warm:
        f = _newton(pymbar, u_kn, N_k, np.asarray(f0, dtype=np.float64))
        if f is not None:
            return f
    errors = tuple(getattr(pymbar.utils, n) for n in ("ParameterError", "ConvergenceError", "DataError"))
    try:
        mbar = pymbar.MBAR(u_kn, N_k, initial_f_k=f0, x_kindices=state, maximum_iterations=_MAX_ITER,
                           solver_protocol=_PROTOCOL if warm else _PROTOCOL_COLD)
    except errors as exc:
        raise ReweightError(f"MBAR found no free energies for T = {_describe_T(1 / beta_k)} "
                            f"({type(exc).__name__}: {exc})") from None
    f = np.asarray(mbar.f_k, dtype=np.float64)
    if not np.all(np.isfinite(f)):
        raise ReweightError(f"MBAR gave non-finite free energies for T = {_describe_T(1 / beta_k)}")
    f = f - f[0]
    # pymbar returns its best unconverged iterate with only a logged warning: check it here
    g = np.abs(np.asarray(pymbar.mbar_solvers.mbar_gradient(u_kn, N_k, f), dtype=np.float64))
    if not np.all(g <= _CONVERGED * N_k):
        k = int(np.argmax(g / N_k))
        raise ReweightError(f"MBAR did not converge for T = {_describe_T(1 / beta_k)} (gradient {g[k]:.3g} "
                            f"samples at T = {1 / beta_k[k]:.6g}, tolerance {_CONVERGED:g} N_k): the energy "
                            "histograms of neighbouring temperatures overlap too little; run longer or use a "
                            "finer temperature grid")
    return f


def _newton(pymbar: Any, u_kn: np.ndarray, N_k: np.ndarray, f: np.ndarray, steps: int = 3) -> np.ndarray | None:
    """Polish a nearby solution (a jackknife replicate from the full fit) by Newton steps on
    pymbar's MBAR objective (its gradient and Hessian, f_0 held at 0); None when the gradient
    is not below ``1e-9 N_k`` after ``steps`` steps (the caller then runs pymbar's solver)."""
    ms = pymbar.mbar_solvers
    f = f - f[0]
    for _ in range(steps + 1):
        g = np.asarray(ms.mbar_gradient(u_kn, N_k, f), dtype=np.float64)
        if np.all(np.abs(g) <= 1e-9 * N_k):
            return f
        H = np.asarray(ms.mbar_hessian(u_kn, N_k, f), dtype=np.float64)
        try:
            f = np.concatenate([[0.0], f[1:] - np.linalg.solve(H[1:, 1:], g[1:])])
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(f)):
            return None
    return None


def _describe_T(T: np.ndarray) -> str:
    return f"{T.min():.6g}..{T.max():.6g} ({T.size} temperatures)"


#: pymbar's Newton-Raphson solver (hybr) from the full fit's f (jackknife replicates)
_PROTOCOL = (dict(method="hybr"),)
#: from the thermodynamic-integration guess: hybr, then pymbar's adaptive fallback, capped (its
#: default of 10000 iterations took 50-90 s per row on grids whose histograms barely overlap,
#: and then returned an unconverged answer)
_PROTOCOL_COLD = (dict(method="hybr"), dict(method="adaptive", options=dict(min_sc_iter=0)))
#: pymbar's iteration cap (MBAR(maximum_iterations=...) overrides the protocol's maxiter)
_MAX_ITER = 300
#: largest accepted |MBAR gradient| per state, in units of that state's sample count
_CONVERGED = 1e-6


def overlap(E: np.ndarray, beta_k: np.ndarray, N_k: np.ndarray, f: np.ndarray, logD: np.ndarray) -> np.ndarray:
    """MBAR overlap matrix O_ij = N_j sum_n W_ni W_nj (Shirts & Chodera 2008), W_nk the weights."""
    logW = f[None, :] - beta_k[None, :] * E[:, None] - logD[:, None]
    W = np.exp(logW)
    return (W.T @ W) * N_k[None, :]


def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """log sum exp along ``axis`` (max-shifted; plain numpy, scipy's array-API one is slower here)."""
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def log_denominator(E: np.ndarray, beta_k: np.ndarray, N_k: np.ndarray, f: np.ndarray) -> np.ndarray:
    """log sum_k N_k exp(f_k - beta_k E_n) for every sample n."""
    return logsumexp(np.log(N_k)[:, None] + f[:, None] - beta_k[:, None] * E[None, :], axis=0)
