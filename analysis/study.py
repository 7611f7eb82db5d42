"""The logit-gap study end to end: forward pass, dL_theory for every head in each mode,
dL_actual, statistics, optional ablations, one HDF5 file.

Every group is a record whose fields declare their storage (:func:`spinsim.io.stored`) and is
written by :func:`spinsim.io.write_record`: :class:`ModeGaps`, :class:`ModeStats`,
:class:`AblationRecord`, :class:`AblationModeRecord` (gap units follow ``candidates_mode``:
logits, or nats for full answers).

File layout (``spinsim gaps``; SPEC section 6, issue 3 item 7)::

    /                         root attrs: conventions, model_id, weights_sha256, family, modes,
                              primary_mode and its input_mode, o_slice, candidates_mode, biases,
                              final_norm; n_perm, seed, alpha, prompts_file
    /prompt, /layer, /head, /perm                 dimension scales (index units)
    /prompts/text, correct, wrong (prompt)        strings; n_prompt_tokens, n_correct_tokens,
                                                  n_wrong_tokens (prompt)
    /<mode>/                  one group per mode ('paper', 'corrected', or 'custom'), attrs = mode
    /<mode>/gaps/theory       (prompt, layer, head)  dL_theory, logit units (nats); NaN rows: excluded
    /<mode>/gaps/actual       (prompt)               dL_actual (NaN: excluded)
    /<mode>/gaps/included     (prompt)               bool: the item enters the statistics; attrs
                              n_excluded, excluded (one 'file:line: reason' per excluded item: a
                              first-token comparison whose first tokens coincide is undefined)
    /<mode>/stats/pearson_r, pearson_p, spearman_rho, spearman_p, bonferroni_p, bh_q, fwer_p
                              (layer, head); attrs survivors_{uncorrected,bonferroni,bh,permutation}
                              (head labels at alpha), best_head, best_r
    /<mode>/stats/null_max_abs_r (perm)          permutation null of max |r|
    /gaps, /stats             hard links to the primary mode's groups (the first mode run)
    /eig                      dimension scale of the spectrum's eigenvalue rank
    /spectrum/...             ferro/antiferro classification and symmetric share of every head (see models.extract),
                              with /<mode>/stats/classification_table (spectrum_class, r_sign):
                              counts of [ferro, antiferro] x [r > 0 (cooperative), r < 0
                              (antagonistic)], both axes text dimension scales of /<mode>/stats
    /ablation/clean           (prompt) clean dL_actual (first sub-token logit gap)
    /ablation/<zero|mean>/measured, predicted (prompt, layer, head); attrs pooled_r, head_mean_r;
    /ablation/<zero|mean>/per_prompt_r (prompt)
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import h5py
import numpy as np

from spinsim.io import REQUIRED, atomic_h5, root_attrs, stored, to_attr, write_axis, write_record, write_values
from spinsim.models.extract import Spectra, spectra
from spinsim.models.heads import HeadSet, extract_heads, head_label

from .ablation import AblationResult
from .gaps import GapMode, Study, actual_gaps, excluded_items, run_forward, theory_gaps
from .prompts import TokenizedItem
from .stats import HeadStats, head_stats

__all__ = ["TooFewItemsError", "ModeResult", "GapStudy", "mode_exclusions", "run_gap_study", "write_gap_study", "write_gap_groups", "write_ablation",
           "write_scales", "write_prompts", "summary_lines", "ModeGaps", "ModeStats", "AblationRecord",
           "AblationModeRecord"]


class TooFewItemsError(ValueError):
    """Fewer than 3 items are left for a mode's correlations once the excluded ones are removed."""


@dataclass
class ModeResult:
    """One mode's gaps (theory (P, L, H), actual (P,); NaN for excluded items) and statistics over
    the L*H heads from the included items. ``excluded``: (item index, 'file:line: reason')."""

    mode: GapMode
    theory: np.ndarray
    actual: np.ndarray
    stats: HeadStats
    excluded: list[tuple[int, str]] = field(default_factory=list)

    @property
    def included(self) -> np.ndarray:
        """(P,) bool: the items that enter the statistics."""
        ok = np.ones(self.actual.shape[0], bool)
        ok[[p for p, _ in self.excluded]] = False
        return ok

    def grid(self, name: str) -> np.ndarray:
        """A per-head statistic as (n_layers, n_heads)."""
        return np.asarray(getattr(self.stats, name)).reshape(self.theory.shape[1:])


@dataclass
class GapStudy:
    items: list[TokenizedItem]
    results: list[ModeResult]
    n_layers: int
    n_heads: int
    spectra: Spectra | None = None
    ablation: AblationResult | None = None
    timings: dict[str, float] = field(default_factory=dict)


def mode_exclusions(items: Sequence[TokenizedItem], modes: Sequence[GapMode],
                    tokenizer: Any = None) -> dict[str, list[tuple[int, str]]]:
    """Per mode name, the items it excludes (:func:`~spinsim.analysis.gaps.excluded_items`; the
    ``tokenizer``, if given, shows the shared token). Raises :class:`TooFewItemsError` naming the
    mode and the first excluded item when fewer than 3 items are left in a mode."""
    decode = (lambda ids: str(tokenizer.decode(list(ids)))) if tokenizer is not None else None
    out = {}
    for m in modes:
        ex = out[m.name] = excluded_items(items, m.candidates, decode)
        if len(items) - len(ex) < 3:
            raise TooFewItemsError(
                f"mode {m.name!r} (candidates {m.candidates}): {len(ex)} of {len(items)} items excluded "
                f"({ex[0][1]}{' ...' if len(ex) > 1 else ''}); correlations need at least "
                "3 items: compare the first differing token (--candidates first-differing) or the full answers")
    return out


def run_gap_study(lm: Any, items: Sequence[TokenizedItem], modes: Sequence[GapMode], n_perm: int = 10_000,
                  seed: int = 0, heads: dict[str, HeadSet] | None = None,
                  log: Callable[[str], None] | None = None) -> GapStudy:
    """Run every mode on the items (one shared forward pass). ``heads`` caches HeadSets by o_slice.

    Items a mode excludes (:func:`~spinsim.analysis.gaps.excluded_items`: a first-token
    comparison whose first tokens coincide) get NaN gaps in that mode and stay out of its
    statistics (:func:`summary_lines` names them). Raises :class:`TooFewItemsError` (before the forward pass)
    when fewer than 3 items are left in a mode.
    """
    timings: dict[str, float] = {}
    heads = {} if heads is None else heads
    for m in modes:
        m.for_family(lm.family)
    excluded = mode_exclusions(items, modes, getattr(lm, "tokenizer", None))
    t = time.perf_counter()
    for m in modes:
        if m.o_slice not in heads:
            heads[m.o_slice] = extract_heads(lm, m.o_slice)
    timings["extract"] = time.perf_counter() - t
    t = time.perf_counter()
    need_res = any(m.input == "residual" for m in modes)
    study: Study = run_forward(lm, items, residual=need_res, heads=next(iter(heads.values())))   # checked
    timings["forward"] = time.perf_counter() - t
    results = []
    for m in modes:
        t = time.perf_counter()
        th = theory_gaps(study, heads[m.o_slice], lm, m)
        ac = actual_gaps(study, m.candidates)
        timings[f"theory_{m.name}"] = time.perf_counter() - t
        t = time.perf_counter()
        res = ModeResult(m, th, ac, None, excluded[m.name])     # type: ignore[arg-type]
        ok = res.included
        res.stats = head_stats(th[ok].reshape(int(ok.sum()), -1), ac[ok], n_perm=n_perm, seed=seed)
        timings[f"stats_{m.name}"] = time.perf_counter() - t
        results.append(res)
        if log:
            log(f"{m.name}: theory {timings[f'theory_{m.name}']:.1f} s, stats {timings[f'stats_{m.name}']:.1f} s")
    first = next(iter(heads.values()))
    return GapStudy(list(items), results, first.n_layers, first.n_heads, timings=timings)


def _labels(idx: np.ndarray, H: int) -> list[str]:
    return [head_label(int(k) // H, int(k) % H) for k in idx]


def excluded_lines(res: ModeResult, show: int = 5) -> list[str]:
    """The items a mode excluded, one line each (at most ``show``), after a count line."""
    if not res.excluded:
        return []
    n = res.actual.shape[0]
    out = [f"[{res.mode.name}] {len(res.excluded)} of {n} items excluded from the statistics "
           f"(candidates {res.mode.candidates}; --candidates first-differing compares the first differing token):"]
    out += [f"  excluded {why}" for _, why in res.excluded[:show]]
    if len(res.excluded) > show:
        out.append(f"  ... {len(res.excluded) - show} more (see /{res.mode.name}/gaps attrs 'excluded')")
    return out


def _best(r: np.ndarray) -> int | None:
    """Index of the largest finite |r|, or None when every r is undefined (NaN)."""
    a = np.abs(np.asarray(r, np.float64))
    return None if not np.isfinite(a).any() else int(np.nanargmax(a))


def summary_lines(gs: GapStudy, alpha: float = 0.05, top: int = 5) -> list[str]:
    """Human-readable summary: per mode the best heads and which survive each correction."""
    out = []
    H = gs.n_heads
    K = gs.n_layers * gs.n_heads
    for res in gs.results:
        s = res.stats
        m = res.mode
        out.append(f"[{m.name}] input={m.input} o-slice={m.o_slice} candidates={m.candidates} biases={m.biases} "
                   f"final-norm={m.final_norm}: {K} heads x {s.n_prompts} prompts, {s.n_perm} permutations")
        out += excluded_lines(res)
        if _best(s.pearson_r) is None:
            out.append("  every r is undefined: dL_actual or every head's dL_theory is constant over the included "
                       "items (no survivors)")
        order = np.argsort(-np.nan_to_num(np.abs(s.pearson_r), nan=-1))[:top]
        for k in order:
            out.append(f"  {_labels(np.array([k]), H)[0]:>7}  r = {s.pearson_r[k]:+.3f} (p = {s.pearson_p[k]:.2g})  "
                       f"rho = {s.spearman_rho[k]:+.3f}  Bonferroni p = {s.bonferroni_p[k]:.2g}  "
                       f"BH q = {s.bh_q[k]:.2g}  family-wise p = {s.fwer_p[k]:.3g}")
        surv = s.survivors(alpha)
        med = float(np.median(s.null_max_abs_r))
        out.append(f"  null max|r| median {med:.3f}; at alpha = {alpha}: "
                   + "; ".join(f"{k}: {len(v)}" + (f" ({', '.join(_labels(v, H)[:8])}{'...' if len(v) > 8 else ''})"
                                                    if 0 < len(v) and k != 'uncorrected' else "")
                               for k, v in surv.items()))
    if gs.ablation is not None:
        if gs.ablation.excluded:
            out.append(f"[ablation] {len(gs.ablation.excluded)} of {gs.ablation.clean.size} items excluded "
                       f"(candidates {gs.ablation.candidates}; see /ablation attrs 'excluded')")
        for mname, c in gs.ablation.correlations().items():
            out.append(f"[ablation {mname}] measured vs predicted direct shift: pooled r = {c['pooled']:.3f}, "
                       f"head-mean r = {c['head_mean']:.3f}, median per-prompt r = {np.nanmedian(c['per_prompt']):.3f}")
    return out


# ---------------------------------------------------------------- HDF5 records
_PLH = ("prompt", "layer", "head")
_LH = ("layer", "head")
_R_SIGNS = ["r > 0 (cooperative, paper)", "r < 0 (antagonistic, paper)"]


def _gap_units(rec: Any) -> str:
    """Units of a logit gap: log-probabilities for full-answer candidates, else logits."""
    return "nats (log-probability)" if rec.candidates_mode == "full" else "logit units"


@dataclass
class ModeGaps:
    """``/<mode>/gaps``: dL_theory (prompt, layer, head) and dL_actual (prompt)."""

    theory: np.ndarray = stored(_PLH, _gap_units, "dL_theory: the head's predicted contribution to the gap "
                                "(correct - wrong); NaN: item excluded", default=REQUIRED)
    actual: np.ndarray = stored(("prompt",), _gap_units, "dL_actual from the full model (correct - wrong); NaN: "
                                "item excluded", default=REQUIRED)
    candidates_mode: str = stored(default="first")
    included: np.ndarray | None = stored(("prompt",), "", "the item enters the statistics (excluded: its "
                                         "comparison is undefined, see attribute 'excluded')")
    n_excluded: int = stored(default=0)
    excluded: Any = stored(default="none")


def _p(long_name: str, units: str = "probability") -> Any:
    return stored(_LH, units, long_name, default=REQUIRED)


@dataclass
class ModeStats:
    """``/<mode>/stats``: the per-head statistics (layer, head), the permutation null (perm), the
    survivors at alpha (head labels, or ``"none"``) and, with a spectrum, the classification
    table (spectrum_class, r_sign) of head counts."""

    pearson_r: np.ndarray = _p("Pearson r over prompts", "dimensionless")
    pearson_p: np.ndarray = _p("two-sided p of Pearson r")
    spearman_rho: np.ndarray = _p("Spearman rho over prompts", "dimensionless")
    spearman_p: np.ndarray = _p("two-sided p of Spearman rho")
    bonferroni_p: np.ndarray = _p("Bonferroni-adjusted Pearson p")
    bh_q: np.ndarray = _p("Benjamini-Hochberg adjusted Pearson p (FDR q)")
    fwer_p: np.ndarray = _p("permutation max-|r| family-wise p")
    null_max_abs_r: np.ndarray = stored(("perm",), "dimensionless", "max over heads of |r| under a prompt "
                                        "permutation", default=REQUIRED)
    survivors_uncorrected: Any = stored(default="none")
    survivors_bonferroni: Any = stored(default="none")
    survivors_bh: Any = stored(default="none")
    survivors_permutation: Any = stored(default="none")
    best_head: str = stored(default="")
    best_r: float = stored(default=float("nan"))
    best_fwer_p: float = stored(default=float("nan"))
    spectrum_class: list[str] | None = stored(scale=True, units="", long_name="ferro/antiferro class of the head "
                                              "(spectrum of M_s)")
    r_sign: list[str] | None = stored(scale=True, units="", long_name="sign of the head's Pearson r")
    classification_table: np.ndarray | None = stored(("spectrum_class", "r_sign"), "heads",
                                                     "heads by spectrum class and sign of r")

    @classmethod
    def of(cls, res: ModeResult, alpha: float, spectra: Spectra | None) -> "ModeStats":
        s = res.stats
        H = res.theory.shape[2]
        surv = {f"survivors_{k}": _labels(v, H) if len(v) else "none" for k, v in s.survivors(alpha).items()}
        kbest = _best(s.pearson_r)
        table = {}
        if spectra is not None:
            cls_ = spectra.ferro_class.reshape(-1)
            r = s.pearson_r
            table = {"spectrum_class": ["ferro", "antiferro"], "r_sign": list(_R_SIGNS),
                     "classification_table": np.array([[np.sum((cls_ == c) & (r > 0)), np.sum((cls_ == c) & (r < 0))]
                                                       for c in ("ferro", "antiferro")])}
        grids = {k: res.grid(k) for k in ("pearson_r", "pearson_p", "spearman_rho", "spearman_p", "bonferroni_p",
                                          "bh_q", "fwer_p")}
        best = {} if kbest is None else dict(best_head=_labels(np.array([kbest]), H)[0],
                                             best_r=float(s.pearson_r[kbest]), best_fwer_p=float(s.fwer_p[kbest]))
        return cls(**grids, null_max_abs_r=s.null_max_abs_r, **surv, **best, **table)


@dataclass
class AblationModeRecord:
    """``/ablation/<mode>``: measured and predicted shifts (prompt, layer, head), per-prompt r."""

    measured: np.ndarray = stored(_PLH, _gap_units, "measured shift of dL_actual when the head is ablated "
                                  "(nan: not ablated)", default=REQUIRED)
    predicted: np.ndarray = stored(_PLH, _gap_units, "predicted shift: the head's direct contribution "
                                   "(first order)", default=REQUIRED)
    per_prompt_r: np.ndarray = stored(("prompt",), "dimensionless", "Pearson r across heads of measured vs "
                                      "predicted shift, per prompt", default=REQUIRED)
    pooled_r: float = stored(default=float("nan"))
    head_mean_r: float = stored(default=float("nan"))
    mode: str = stored(default="")
    candidates_mode: str = stored(default="first")


@dataclass
class AblationRecord:
    """``/ablation``: the clean gap (prompt) and how the ablation was done."""

    clean: np.ndarray = stored(("prompt",), _gap_units, "clean dL_actual", default=REQUIRED)
    candidates_mode: str = stored(default="first")
    ablated_heads: list[str] = stored(default=[])
    n_excluded: int = stored(default=0)
    excluded: Any = stored(default="none")
    hook: str = stored(default="forward pre-hook on the attention output projection; head slice "
                       "h*d_head:(h+1)*d_head")
    predicted: str = stored(default="first-order direct path: (z_repl - z) W_O read through the final norm "
                            "linearised at the clean run (u_eff . delta_o), summed over readout positions")


def write_scales(f: h5py.Group, n_prompts: int, n_layers: int, n_heads: int) -> None:
    """The ``prompt``, ``layer`` and ``head`` dimension scales of a gaps or ablation file."""
    write_axis(f, "prompt", np.arange(n_prompts), "index", "prompt (row of the prompt file)")
    write_axis(f, "layer", np.arange(n_layers), "index", "layer (from 0)")
    write_axis(f, "head", np.arange(n_heads), "index", "head within its layer (from 0)")


def write_prompts(f: h5py.Group, items: Sequence[TokenizedItem]) -> None:
    """``/prompts``: text, correct, wrong and the token counts over ``prompt``."""
    g = f.create_group("prompts")
    for name, vals, long_name in (("text", [it.item.prompt for it in items], "prompt text"),
                                  ("correct", [it.item.correct for it in items], "correct answer"),
                                  ("wrong", [it.item.wrong for it in items], "wrong answer")):
        write_values(g, name, np.array(vals, dtype=object), ("prompt",), "", long_name)
    write_values(g, "n_prompt_tokens", [it.n_prompt for it in items], ("prompt",), "tokens", "prompt length")
    write_values(g, "n_correct_tokens", [len(it.correct_ids) for it in items], ("prompt",), "tokens",
                 "tokens of the correct answer after the prompt (prompt + ' ' + answer tokenised together)")
    write_values(g, "n_wrong_tokens", [len(it.wrong_ids) for it in items], ("prompt",), "tokens",
                 "tokens of the wrong answer after the prompt (prompt + ' ' + answer tokenised together)")


def write_gap_groups(f: h5py.Group, lm: Any, gs: GapStudy, alpha: float = 0.05, seed: int = 0,
                     **attrs: Any) -> None:
    """Write the study (layout in the module docstring) into an open file (root attributes included)."""
    L, H = gs.n_layers, gs.n_heads
    prim = gs.results[0].mode
    ra = root_attrs("gaps", model_id=lm.model_id, weights_sha256=lm.weights_sha256, family=lm.family,
                    modes=[r.mode.name for r in gs.results], primary_mode=prim.name, seed=seed, alpha=alpha,
                    n_perm=gs.results[0].stats.n_perm, n_layers=L, n_heads=H,
                    timings=gs.timings, **prim.attrs(), **attrs)
    for k, v in ra.items():
        f.attrs[k] = v
    write_scales(f, len(gs.items), L, H)
    write_axis(f, "perm", np.arange(gs.results[0].stats.n_perm), "index", "permutation")
    write_prompts(f, gs.items)
    for res in gs.results:
        m = res.mode
        gm = f.create_group(m.name)
        for k, v in m.attrs().items():
            gm.attrs[k] = to_attr(v)
        write_record(gm.create_group("gaps"), ModeGaps(res.theory, res.actual, m.candidates, res.included,
                                                       len(res.excluded),
                                                       [why for _, why in res.excluded] or "none"))
        write_record(gm.create_group("stats"), ModeStats.of(res, alpha, gs.spectra))
    f["gaps"] = f[f"{prim.name}/gaps"]     # hard links: the primary mode at the paths
    f["stats"] = f[f"{prim.name}/stats"]
    if gs.spectra is not None:
        write_axis(f, "eig", np.arange(gs.spectra.eigenvalues.shape[-1]), "index", "eigenvalue rank (descending)")
        gs.spectra.write_group(f.create_group("spectrum"))
    if gs.ablation is not None:
        write_ablation(f, gs.ablation)


def write_gap_study(path: str | os.PathLike, lm: Any, gs: GapStudy, alpha: float = 0.05, seed: int = 0,
                    **attrs: Any) -> None:
    """Write the study (layout in the module docstring) atomically (:func:`write_gap_groups`)."""
    with atomic_h5(path) as f:
        write_gap_groups(f, lm, gs, alpha=alpha, seed=seed, **attrs)


def write_ablation(f: h5py.Group, ab: AblationResult) -> None:
    """Write ``/ablation`` (:class:`AblationRecord`, one :class:`AblationModeRecord` per mode) into
    an open file that has the prompt/layer/head scales."""
    g = f.create_group("ablation")
    write_record(g, AblationRecord(ab.clean, ab.candidates, [head_label(l, h) for l, h in ab.heads],
                                   len(ab.excluded), [why for _, why in ab.excluded] or "none"))
    corr = ab.correlations()
    for i, m in enumerate(ab.modes):
        write_record(g.create_group(m), AblationModeRecord(
            ab.measured[i], ab.predicted[i], corr[m]["per_prompt"], pooled_r=float(corr[m]["pooled"]),
            head_mean_r=float(corr[m]["head_mean"]), mode=m, candidates_mode=ab.candidates))
