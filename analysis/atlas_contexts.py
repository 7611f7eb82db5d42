"""Context length as a thermodynamic axis: quenched ensembles of contexts, and T_c(N) scaling.

**Ensembles.** A context of N tokens is one quenched disorder realisation of a head's spin
system (its spins' lengths, directions and the rotary phases all follow the tokens). Sample s
of the ensemble is one token sequence, and its length-N context is the sequence's first N tokens
(nested prefixes: the lengths of one sample share their tokens, which makes T_c(N) differences
less noisy):

* :func:`model_contexts`: sequences sampled from the model itself at temperature 1 after its
  BOS token (the first token of ``start`` when the tokenizer has none), seeded per sample
  (``torch.Generator`` seeded ``seed + s``); the start token is not part of the context.
* :func:`file_contexts`: windows of a text file's tokens, starting at seeded random offsets.

**Normalisation** (declared in the file's ``normalisation`` attribute and the figures):
``plain`` keeps the model's scores (every bond the attention logit; the energy grows like N^2
on a complete causal graph), ``kac`` divides every bond by N - 1 (Kac: the energy per site
stays finite as N grows, so a T_c(N) that converges is a thermodynamic limit). Only the bonds W
are scaled: single-site terms (the query/key bias fields, the prompt field) are kept.

**Scaling** (:func:`tc_scaling`): weighted least-squares fits of ``T_c(N) = a + b ln N`` and of
``ln T_c = c + p ln N`` (a power law) to the per-length T_c with their errors; each fit's slope,
its standard error and chi^2 per degree of freedom.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from spinsim.hamiltonian import Hamiltonian, replace

__all__ = ["model_contexts", "file_contexts", "normalise", "tc_scaling", "NORMALISATIONS"]

NORMALISATIONS = {"plain": "plain: every bond the model's attention score (energy ~ N^2 on the causal graph)",
                  "kac": "kac: every bond divided by N - 1 (energy per site finite as N grows)"}


def _check(lengths: Sequence[int], n_samples: int) -> list[int]:
    ls = [int(x) for x in lengths]
    if not ls or any(x < 2 for x in ls) or len(set(ls)) != len(ls):
        raise ValueError(f"lengths must be distinct integers >= 2, got {list(lengths)}")
    if n_samples < 1:
        raise ValueError(f"samples must be >= 1, got {n_samples}")
    return sorted(ls)


def model_contexts(lm: Any, lengths: Sequence[int], n_samples: int, seed: int = 0,
                   start: str | None = None) -> list[list[list[int]]]:
    """``[i_length][i_sample]`` token lists sampled from the model (rules in the module docstring).
    Raises ValueError for bad lengths/samples or a model with neither BOS nor ``start``."""
    import torch

    ls = _check(lengths, n_samples)
    tok = lm.tokenizer
    bos = getattr(tok, "bos_token_id", None) if tok is not None else None
    if bos is None:
        if not start:
            raise ValueError("the model's tokenizer has no BOS token: give a start text")
        bos = lm.encode(start)[0]
    n_max = ls[-1]
    seqs = []
    with torch.no_grad():
        for s in range(n_samples):
            g = torch.Generator().manual_seed(int(seed) + s)
            ids = torch.tensor([[int(bos)]])
            for _ in range(n_max):
                logits = lm.model(ids).logits[0, -1].double()
                nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=g)
                ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
            seqs.append([int(t) for t in ids[0, 1:]])
    return [[q[:N] for q in seqs] for N in ls]


def file_contexts(lm: Any, text: str, lengths: Sequence[int], n_samples: int, seed: int = 0) -> list[list[list[int]]]:
    """``[i_length][i_sample]`` windows of ``text``'s tokens: sample s starts at a seeded random
    offset and its contexts are the first N tokens from there. Raises ValueError when the text is
    shorter than the largest length."""
    ls = _check(lengths, n_samples)
    toks = lm.encode(text)
    if len(toks) < ls[-1]:
        raise ValueError(f"the text has {len(toks)} tokens, fewer than the largest length {ls[-1]}")
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(toks) - ls[-1] + 1, size=n_samples)
    return [[[int(t) for t in toks[s:s + N]] for s in starts] for N in ls]


def normalise(H: Hamiltonian, convention: str) -> Hamiltonian:
    """H with its bonds scaled by the convention (:data:`NORMALISATIONS`); ValueError otherwise."""
    if convention not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {convention!r}; allowed: {', '.join(NORMALISATIONS)}")
    if convention == "plain" or H.n_sites < 2:
        return H
    return replace(H, W=H.W / (H.n_sites - 1))


def _wls(x: np.ndarray, y: np.ndarray, err: np.ndarray) -> tuple[float, float, float, float]:
    """Slope, its standard error, chi^2/dof and intercept of a weighted straight-line fit y = a + b x."""
    w = 1.0 / np.maximum(err, 1e-12) ** 2
    X = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    beta = cov @ (X.T @ (w * y))
    dof = x.size - 2
    chi2 = float(np.sum(w * (y - X @ beta) ** 2) / dof) if dof > 0 else float("nan")
    return float(beta[1]), float(np.sqrt(cov[1, 1])), chi2, float(beta[0])


def tc_scaling(N: Any, T_c: Any, T_c_err: Any) -> dict[str, float]:
    """Fits of T_c(N) (module docstring) over the lengths with a finite T_c and error (at least 2;
    NaN otherwise): ``log_slope`` b of ``a + b ln N`` (``log_intercept`` a), ``power`` p of
    ``T_c = exp(c) N^p`` (``power_intercept`` c), the slopes with ``_err`` and ``_chi2`` (per
    degree of freedom; NaN with two points), and ``n_points``."""
    N, tc, te = (np.asarray(v, float) for v in (N, T_c, T_c_err))
    ok = np.isfinite(tc) & np.isfinite(te) & (tc > 0) & (N > 0)
    out = {"n_points": float(ok.sum())}
    keys = ("log_slope", "log_slope_err", "log_slope_chi2", "log_intercept", "power", "power_err", "power_chi2",
            "power_intercept")
    if ok.sum() < 2:
        return dict(out, **{k: float("nan") for k in keys})
    lnN = np.log(N[ok])
    te_ok = np.where(te[ok] > 0, te[ok], np.maximum(1e-3 * tc[ok], 1e-12))
    b, be, bc, a = _wls(lnN, tc[ok], te_ok)
    p, pe, pc, c = _wls(lnN, np.log(tc[ok]), te_ok / tc[ok])
    return dict(out, log_slope=b, log_slope_err=be, log_slope_chi2=bc, log_intercept=a, power=p, power_err=pe,
                power_chi2=pc, power_intercept=c)
