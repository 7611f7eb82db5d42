"""The spin-bath predictions, tested with honest statistics (issue 12, item 4).

Every test returns a :class:`PredictionTest`: the statistic, an effect size with a bootstrap 95 %
interval (:func:`scipy.stats.bootstrap`, seeded: percentile, BCa for (b)), a permutation p-value
(:func:`scipy.stats.permutation_test`, seeded), the number of heads that entered, and a verdict:
``"evidence"`` when p < alpha, otherwise ``"no evidence"`` (never "evidence against").

(a) :func:`ablation_vs_boundary`: does a head's ablation effect (mean |measured shift| of the logit
    gap over the prompts) grow as the model's point (T = 1, h = 0) nears that head's boundary?
    Statistic: Kendall tau between the effect and the closeness ``-|ln T_c|`` over the pairs of
    heads whose order is known; one-sided (prediction: tau > 0). A head whose T_c lies beyond the
    grid's edge is not dropped (that would select on the predictor) but censored: its distance is
    only known to exceed the edge's, and pairs are ordered by Gehan's rule (:func:`closeness_order`).
    :func:`spinsim.analysis.atlas_study.run_predictions` reports the test with the censored heads
    (``a``) and without them (``a_uncensored``), with the number censored.
(b) :func:`class_share_per_layer`: the ferro / antiferro / mixed share per layer (classification
    rule: :data:`spinsim.analysis.atlas_summary.CLASS_RULE`). Statistic: chi^2 of the layer x class
    table; permutation p of independence (class labels permuted across heads); effect size
    Cramér's V bias-corrected (Bergsma 2013, :func:`cramers_v_corrected`).
(c) :func:`class_vs_gap_sign`: does the classification agree with the sign of each head's
    logit-gap correlation r (Pearson over the prompts, dL_theory vs dL_actual)? Ferro coded +1,
    antiferro -1 (mixed left out), sign(r) +-1; statistic: the agreement fraction; effect size phi
    (the correlation of the two codes); two-sided permutation p.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["PredictionTest", "ablation_vs_boundary", "closeness_order", "class_share_per_layer", "cramers_v_corrected", "class_vs_gap_sign", "ALPHA"]

ALPHA = 0.05


@dataclass(frozen=True)
class PredictionTest:
    """One prediction's test (module docstring)."""

    name: str
    question: str
    statistic_name: str
    statistic: float
    effect_name: str
    effect: float
    effect_ci: tuple[float, float]
    p_value: float
    alternative: str
    n: int
    n_left_out: int
    verdict: str
    rule: str
    n_censored: int = 0          # of the n heads, those that entered censored (T_c beyond the grid)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        lo, hi = self.effect_ci
        return (f"{self.name}: {self.statistic_name} = {self.statistic:.3g}, {self.effect_name} = {self.effect:.3g} "
                f"[{lo:.3g}, {hi:.3g}], permutation p = {self.p_value:.3g} ({self.alternative}), n = {self.n}"
                + (f" ({self.n_censored} censored)" if self.n_censored else "")
                + f" ({self.n_left_out} left out): {self.verdict}")


def _verdict(p: float, alpha: float) -> str:
    return "evidence" if np.isfinite(p) and p < alpha else "no evidence"


def _nan_test(name: str, question: str, stat: str, eff: str, alt: str, n: int, left: int, rule: str,
              n_censored: int = 0) -> PredictionTest:
    return PredictionTest(name, question, stat, float("nan"), eff, float("nan"), (float("nan"), float("nan")),
                          float("nan"), alt, n, left, "no evidence (too few heads to test)", rule, n_censored)


def closeness_order(distance: Any, bound: Any = None) -> np.ndarray:
    """(n, n) pair matrix K of what is known about the heads' distances to the boundary: K[i, j] =
    +1 when head i is known to be closer than head j, -1 when known farther, 0 when unknown or tied.

    ``distance`` (n,) |ln T_c| (NaN: no T_c in the grid); ``bound`` (n,) for those heads the lower
    bound their distance is known to exceed (right-censored: T_c beyond the grid's edge; NaN: nothing
    known). Observed i and j: sign(d_j - d_i); observed i, censored j: +1 when d_i < c_j, else
    unknown; two censored heads: unknown (Gehan's pair rule for censored data, Gehan 1965,
    Biometrika 52, 203)."""
    d = np.asarray(distance, float)
    c = np.full(d.shape, np.nan) if bound is None else np.asarray(bound, float)
    obs = np.isfinite(d)
    cen = ~obs & np.isfinite(c)
    with np.errstate(invalid="ignore"):
        K = np.where(obs[:, None] & obs[None, :], np.sign(d[None, :] - d[:, None]), 0.0)
        closer = obs[:, None] & cen[None, :] & (d[:, None] < c[None, :])      # i observed below j's bound
    K = K + closer - closer.T
    return np.nan_to_num(K)


def _concordance(e: np.ndarray, K: np.ndarray) -> np.ndarray:
    """sum_ij sign(e_i - e_j) K_ij / sum_ij |K_ij| over the last axis of e (batched)."""
    S = np.sign(e[..., :, None] - e[..., None, :])
    return np.sum(S * K, axis=(-2, -1)) / max(float(np.abs(K).sum()), 1.0)


def ablation_vs_boundary(effect: Any, distance: Any, n_resamples: int = 9999, seed: int = 0,
                         alpha: float = ALPHA, *, bound: Any = None) -> PredictionTest:
    """Prediction (a) (module docstring). ``effect`` (n_head,) mean |ablation shift| (logits);
    ``distance`` (n_head,) ``|ln T_c|`` of each head (NaN: no T_c); ``bound`` (n_head,) where
    distance is NaN, the lower bound of a head whose T_c lies beyond the grid's edge (censored, it
    enters the test: :func:`closeness_order`), NaN for a head with nothing known (left out).

    Statistic: Kendall's tau between the effect and the closeness to the boundary over the pairs
    whose order is known (censored pairs by Gehan's rule; no censoring: Kendall's tau, distance ties
    left out); one-sided permutation p (effects permuted across heads, seeded), percentile
    bootstrap 95 % interval over heads. Heads without an effect are left out."""
    e, d = np.asarray(effect, float), np.asarray(distance, float)
    c = np.full(d.shape, np.nan) if bound is None else np.asarray(bound, float)
    cen = ~np.isfinite(d) & np.isfinite(c)
    ok = np.isfinite(e) & (np.isfinite(d) | cen)
    x, K = e[ok], closeness_order(d[ok], c[ok])
    n_cen = int(cen[ok].sum())
    q = "does a head's ablation effect grow as the model's point (T = 1) nears the head's boundary?"
    rule = ("Kendall tau(mean |measured ablation shift|, closeness -|ln T_c|) over the head pairs whose order is "
            "known; a head with its T_c beyond the grid edge is censored at the edge's distance (Gehan's pair "
            "rule); one-sided, tau > 0 predicted")
    if ok.sum() < 4 or np.ptp(x) == 0 or not np.any(K):
        return _nan_test("ablation_vs_boundary", q, "Kendall tau", "tau", "greater", int(ok.sum()),
                         int((~ok).sum()), rule, n_cen)
    idx = np.arange(x.size)

    def tau(a: np.ndarray, axis: int = -1) -> np.ndarray:
        return _concordance(np.moveaxis(a, axis, -1), K)

    def tau_boot(a: np.ndarray, j: np.ndarray) -> float:
        j = j.astype(int)
        return float(_concordance(a, K[np.ix_(j, j)]))

    t = float(tau(x))
    perm = stats.permutation_test((x,), tau, permutation_type="pairings", n_resamples=n_resamples,
                                  alternative="greater", random_state=seed, vectorized=True, batch=50)
    ci = stats.bootstrap((x, idx), tau_boot, paired=True, n_resamples=min(2000, n_resamples + 1),
                         method="percentile", random_state=seed, vectorized=False).confidence_interval
    return PredictionTest("ablation_vs_boundary", q, "Kendall tau", t, "tau", t, (float(ci.low), float(ci.high)),
                          float(perm.pvalue), "greater", int(ok.sum()), int((~ok).sum()),
                          _verdict(float(perm.pvalue), alpha), rule, n_cen)


def _table(layer: np.ndarray, cls: np.ndarray, layers: np.ndarray, classes: list[str]) -> np.ndarray:
    return np.array([[np.sum((layer == l) & (cls == c)) for c in classes] for l in layers], float)


def _chi2(t: np.ndarray) -> float:
    t = t[t.sum(1) > 0][:, t.sum(0) > 0]
    if t.shape[0] < 2 or t.shape[1] < 2:
        return 0.0
    exp = t.sum(1, keepdims=True) * t.sum(0, keepdims=True) / t.sum()
    return float(np.sum((t - exp) ** 2 / exp))


def cramers_v_corrected(chi2: float, n: int, r: int, c: int) -> float:
    """Bias-corrected Cramér's V of an r x c table with n entries and statistic chi^2 (Bergsma,
    J. Korean Stat. Soc. 42, 323 (2013), eq. 3): phi^2 = chi^2 / n less its null expectation
    (r - 1)(c - 1) / (n - 1), clipped at 0, over min(r~, c~) - 1 with r~ = r - (r - 1)^2 / (n - 1)
    (c~ alike). The plain V = sqrt(phi^2 / (min(r, c) - 1)) of independent labels is far from 0 in
    a sparse table (30 layers x 3 classes over 270 heads: ~0.3, as large as SmolLM2's); this one
    is ~0 there. 0 when the table has one row or one column (or n < 2)."""
    if n < 2 or min(r, c) < 2:
        return 0.0
    phi2 = max(0.0, chi2 / n - (r - 1) * (c - 1) / (n - 1))
    rt, ct = r - (r - 1) ** 2 / (n - 1), c - (c - 1) ** 2 / (n - 1)
    den = min(rt, ct) - 1
    return float(np.sqrt(phi2 / den)) if den > 0 else 0.0


def class_share_per_layer(layer: Any, classes: Any, n_resamples: int = 9999, seed: int = 0,
                          alpha: float = ALPHA) -> tuple[dict[str, np.ndarray], PredictionTest]:
    """Prediction (b): the share table ``{"layer": (n_layer,), "<class>": (n_layer,) shares,
    "n": (n_layer,)}`` and the test that the shares differ between layers."""
    lay, cls = np.asarray(layer), np.asarray(classes, dtype=object)
    ok = np.isin(cls, ["ferro", "antiferro", "mixed"])
    names = ["ferro", "antiferro", "mixed"]
    layers = np.unique(lay[ok])
    t = _table(lay[ok], cls[ok], layers, names)
    n = t.sum(1)
    shares = {"layer": layers, "n": n, **{c: t[:, j] / np.maximum(n, 1) for j, c in enumerate(names)}}
    q = "is the ferro / antiferro / mixed share the same in every layer?"
    rule = ("chi^2 of the layer x class table; permutation of class labels across heads; Cramér's V bias-corrected "
            "(Bergsma 2013)")
    used = t[:, t.sum(0) > 0]
    if ok.sum() < 4 or layers.size < 2 or used.shape[1] < 2:
        return shares, _nan_test("class_share_per_layer", q, "chi^2", "Cramér's V (bias-corrected)", "greater", int(ok.sum()),
                                 int((~ok).sum()), rule)
    x, y = lay[ok], cls[ok]
    codes = np.array([names.index(c) for c in y])

    def chi2(a: np.ndarray, b: np.ndarray) -> float:
        return _chi2(_table(a, np.array(names, dtype=object)[b], layers, names))

    c2 = chi2(x, codes)
    perm = stats.permutation_test((x, codes), chi2, permutation_type="pairings", n_resamples=n_resamples,
                                  alternative="greater", random_state=seed)

    def cramer(a: np.ndarray, b: np.ndarray) -> float:
        return cramers_v_corrected(chi2(a, b), a.size, np.unique(a).size, np.unique(b).size)

    v = cramer(x, codes)
    # BCa: resampling heads with replacement inflates chi^2 (duplicates), so the percentile interval
    # of V sits above V itself (SmolLM2: V = 0, percentile interval [0.19, 0.40]). BCa corrects that
    # shift; where it is undefined or does not hold V (V below nearly every bootstrap value, e.g.
    # V = 0): the conservative [0, max(V, 97.5 % point)].
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        boot = stats.bootstrap((x, codes), cramer, paired=True, n_resamples=min(1000, n_resamples + 1),
                               method="BCa", random_state=seed)
    lo, hi = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= v <= hi):
        # BCa breaks down when V sits below (nearly) every bootstrap value: its interval then
        # collapses onto the bottom of the bootstrap distribution, away from V. Conservative instead.
        lo, hi = 0.0, max(v, float(np.percentile(boot.bootstrap_distribution, 97.5)))
    return shares, PredictionTest("class_share_per_layer", q, "chi^2", c2, "Cramér's V (bias-corrected)", v,
                                  (lo, hi), float(perm.pvalue), "greater", int(ok.sum()),
                                  int((~ok).sum()), _verdict(float(perm.pvalue), alpha), rule)


def _phi(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _agree(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def class_vs_gap_sign(classes: Any, r: Any, n_resamples: int = 9999, seed: int = 0,
                      alpha: float = ALPHA) -> PredictionTest:
    """Prediction (c) (module docstring). ``classes`` (n_head,) of the coupling class; ``r``
    (n_head,) each head's logit-gap Pearson r (NaN left out)."""
    cls, rr = np.asarray(classes, dtype=object), np.asarray(r, float)
    ok = np.isin(cls, ["ferro", "antiferro"]) & np.isfinite(rr) & (rr != 0)
    a = np.where(cls[ok] == "ferro", 1, -1)
    b = np.sign(rr[ok]).astype(int)
    q = "does the ferro / antiferro class agree with the sign of the head's logit-gap correlation?"
    rule = "ferro = +1, antiferro = -1 (mixed left out) vs sign(r); agreement fraction, phi, two-sided permutation p"
    if ok.sum() < 4 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return _nan_test("class_vs_gap_sign", q, "agreement", "phi", "two-sided", int(ok.sum()), int((~ok).sum()),
                         rule)
    perm = stats.permutation_test((a, b), _phi, permutation_type="pairings", n_resamples=n_resamples,
                                  alternative="two-sided", random_state=seed)
    ci = stats.bootstrap((a, b), _phi, paired=True, n_resamples=min(2000, n_resamples + 1), method="percentile",
                         random_state=seed).confidence_interval
    return PredictionTest("class_vs_gap_sign", q, "agreement", _agree(a, b), "phi", _phi(a, b),
                          (float(ci.low), float(ci.high)), float(perm.pvalue), "two-sided", int(ok.sum()),
                          int((~ok).sum()), _verdict(float(perm.pvalue), alpha), rule)
