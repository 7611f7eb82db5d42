"""Figures and report prose of ``spinsim demo`` (:func:`spinsim.analysis.demo.run_demo`).

:func:`demo_figures` draws ``heads_r``, ``ablation`` and ``ground`` (PNG + PDF);
:func:`report_sections` turns a :class:`~spinsim.analysis.demo.DemoResult` into the sections of
:func:`spinsim.analysis.report.write_report`.
"""
from __future__ import annotations

import platform
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PAPER", "demo_figures", "report_sections"]

#: what the paper reports (Bhattacharjee & Lee; SPEC section 0)
PAPER = {"model": "GPT-2 small", "head": "L3H5", "r": -0.70, "p": "< 1e-3 (uncorrected, best of 144 heads)",
         "n_prompts": 20}


def _grid_figsize(n_layers: int, n_heads: int) -> tuple[float, float]:
    return 2 * max(5.0, 0.55 * n_heads + 1.5), max(4.0, 0.3 * n_layers + 1.5)


def demo_figures(gs: Any, ground: Any, out: Path, alpha: float) -> dict[str, str]:
    """Per-head r in both modes, measured vs predicted ablation shifts, spin-wave gaps and
    Goldstone counts (``ground``: a :class:`~spinsim.analysis.ground_study.GroundStudy`).

    Returns figure name -> PNG file name (relative to ``out``).
    """
    from .figures import head_grid, save     # first: selects the Agg backend
    from .ground_study import plot_ground_study

    import matplotlib.pyplot as plt

    n_layers, n_heads = gs.n_layers, gs.n_heads
    corr, paper = gs.results[0], gs.results[1]
    figs = {}
    fig, axes = plt.subplots(1, 2, figsize=_grid_figsize(n_layers, n_heads), constrained_layout=True)
    for ax, res, name in ((axes[0], paper, "paper mode"), (axes[1], corr, "corrected mode")):
        mark = (res.stats.fwer_p < alpha).reshape(n_layers, n_heads)
        head_grid(res.grid("pearson_r"), ax=ax, label="Pearson r", annotate=n_heads * n_layers <= 300, mark=mark,
                  mark_label=f"family-wise p < {alpha}", title=f"r(dL_theory, dL_actual), {name}", fmt="{:.1f}")
    save(fig, out / "heads_r")
    figs["heads_r"] = "heads_r.png"
    ab = gs.ablation
    if ab is not None:
        fig, ax = plt.subplots(figsize=(5.5, 4.5), constrained_layout=True)
        meas, pred = ab.measured[0].ravel(), ab.predicted[0].ravel()
        ok = np.isfinite(meas) & np.isfinite(pred)
        ax.plot(pred[ok], meas[ok], ".", alpha=0.35, ms=3)
        lim = np.nanmax(np.abs(np.r_[meas[ok], pred[ok]])) if ok.any() else 1.0
        ax.plot([-lim, lim], [-lim, lim], "k--", lw=0.8, label="measured = predicted")
        c = ab.correlations()["zero"]
        ax.set_xlabel("predicted shift of dL (head's direct contribution, nats)")
        ax.set_ylabel("measured shift of dL on zero ablation (nats)")
        ax.set_title(f"head x prompt ablations: pooled r = {c['pooled']:.2f}")
        ax.legend(frameon=False)
        save(fig, out / "ablation")
        figs["ablation"] = "ablation.png"
    plot_ground_study(ground, out / "ground")
    figs["ground"] = "ground.png"
    return figs


def _survivors(res: Any, alpha: float, n_heads: int) -> dict[str, list[str]]:
    from spinsim.models.heads import head_label

    return {k: [head_label(int(i) // n_heads, int(i) % n_heads) for i in v]
            for k, v in res.stats.survivors(alpha).items()}


def _gap_rows(corr: Any, paper: Any, alpha: float, n_heads: int) -> list[list[Any]]:
    from spinsim.models.heads import head_label

    rows = []
    for res, name in ((paper, "paper"), (corr, "corrected")):
        s = res.stats
        k = int(np.nanargmax(np.abs(s.pearson_r)))
        surv = _survivors(res, alpha, n_heads)
        m = res.mode
        rows.append([name, f"{m.input} / {m.o_slice} / {m.candidates}", head_label(k // n_heads, k % n_heads),
                     float(s.pearson_r[k]), float(s.pearson_p[k]), float(s.fwer_p[k]),
                     len(surv["uncorrected"]), len(surv["bonferroni"]), len(surv["bh"]), len(surv["permutation"])])
    rows.append([f"paper ({PAPER['model']})", "embed / paper / first", PAPER["head"], PAPER["r"], PAPER["p"],
                 "not reported", "", "", "", ""])
    return rows


def _ablation_blocks(gs: Any, corr: Any, ground: Any, figs: dict[str, str]) -> list[Any]:
    """Paragraph, top-10 table and figure of the ablation section."""
    from scipy.stats import spearmanr

    from spinsim.models.heads import head_label

    ab = gs.ablation
    if ab is None:
        return [""]
    n_heads = gs.n_heads
    c = ab.correlations()["zero"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)        # heads not ablated: all-NaN columns
        meas = np.nanmean(np.abs(ab.measured[0]), axis=0)
        pred = np.nanmean(np.abs(ab.predicted[0]), axis=0)
    rows = []
    for k in np.argsort(-np.nan_to_num(meas, nan=-1).ravel())[:10]:
        l, h = divmod(int(k), n_heads)
        rows.append([head_label(l, h), float(meas[l, h]), float(pred[l, h]),
                     float(corr.stats.pearson_r[k]), float(ground.spin_wave_gap[l, h])])
    text = (f"Zero-ablating one head at a time and re-running the model: the measured shift of the first-token "
            f"logit gap against the head's direct contribution (predicted shift) has pooled r = {c['pooled']:.3f} "
            f"over head x prompt and r = {c['head_mean']:.3f} across heads (prompt-averaged).")
    spin_wave_gap = ground.spin_wave_gap.ravel()
    ok = np.isfinite(spin_wave_gap) & np.isfinite(meas.ravel())
    if ok.sum() > 3:
        rho, p = spearmanr(np.abs(spin_wave_gap[ok]), meas.ravel()[ok])
        text += (f" Across heads, the spin-wave gap of the head's ground state and its mean |ablation shift| "
                 f"have Spearman rho = {rho:.3f} (p = {p:.2g}, n = {int(ok.sum())}): "
                 + ("small-gap heads (near a level crossing) move the output more." if (rho < 0 and p < 0.05)
                    else "no evidence that heads near a level crossing matter more."))
    blocks: list[Any] = [text]
    if rows:
        blocks.append({"table": rows, "header": ["head", "mean |measured shift|", "mean |predicted shift|",
                                                 "r (corrected)", "spin-wave gap"],
                       "caption": "The 10 heads whose ablation moves the gap most."})
    if "ablation" in figs:
        blocks.append({"figure": figs["ablation"], "caption": "Measured vs predicted shift, every head x prompt."})
    return blocks


def report_sections(r: Any) -> list[tuple[str, list[Any]]]:
    """The report of a :class:`~spinsim.analysis.demo.DemoResult` (sections for ``write_report``)."""
    st, gs = r.settings, r.gap_study
    corr, paper = gs.results[0], gs.results[1]
    n_layers, n_heads = gs.n_layers, gs.n_heads
    n_all = n_layers * n_heads
    alpha, val, vitem, ground = st.alpha, r.validation, r.validated_item, r.ground
    null_med = float(np.median(corr.stats.null_max_abs_r))
    verdict = []
    for name, sv in (("paper", _survivors(paper, alpha, n_heads)), ("corrected", _survivors(corr, alpha, n_heads))):
        fw = sv["permutation"]
        verdict.append(f"- {name} mode: {len(fw)} of {n_all} heads survive the permutation family-wise test at "
                       f"alpha = {alpha}" + (f" ({', '.join(fw[:10])})" if fw else " (none)") +
                       f"; Bonferroni {len(sv['bonferroni'])}, BH-FDR {len(sv['bh'])}, "
                       f"uncorrected {len(sv['uncorrected'])}.")
    bnd = getattr(r.phase, "boundaries", {}) or {}
    bnd_lines = [f"- `{name}`: {line.get('method', name)}" for name, line in bnd.items()]
    max_z = float(np.nanmax(np.abs(val.z)))
    timing_rows = [[k, float(v)] for k, v in r.timings.items()] + [["total", float(r.total_s)]]
    return [
        ("What this is", [
            f"Model **{r.model_id}** ({r.family}, {n_layers} layers x {n_heads} heads), weights sha256 "
            f"`{r.weights_sha256[:16]}...`. "
            f"Each head is a classical spin system H = -sum_(i!=j) W_ij S_i.M S_j - sum_i h_i.S_i (k_B = 1) with "
            f"M = W_Q W_K^T / sqrt(d_head); the prompt's tokens are the spins. The study asks whether the head's "
            f"context field predicts the model's next-token preference (the logit gap between a correct and a wrong "
            f"answer) over {len(gs.items)} prompts, correcting for having looked at {n_all} heads.",
            *[f"**{m.mode.name}** mode: {len(m.excluded)} of {len(gs.items)} prompts excluded (their two answers "
              "start with the same token, so a first-token comparison is undefined): "
              + "; ".join(why for _, why in m.excluded[:5]) + (" ..." if len(m.excluded) > 5 else "")
              for m in gs.results if m.excluded],
            "Modes: **paper** = raw token embeddings, first sub-token, the paper's output slice (for GPT-2 the columns "
            "of c_proj; Llama has no such defect, so its paper mode uses the correct rows); **corrected** = the "
            "residual stream the head really sees, the head's real output rows, whole multi-token answers "
            "(teacher-forced log-probabilities).",
        ]),
        ("Logit gaps and family-wise statistics", [
            {"table": _gap_rows(corr, paper, alpha, n_heads),
             "header": ["mode", "input / o-slice / candidates", "best head", "r", "p (uncorrected)",
                        "family-wise p", "uncorrected", "Bonferroni", "BH-FDR", "permutation"],
             "caption": f"Best head by |r| per mode and the number of heads significant at alpha = {alpha} "
                        f"under each correction ({st.n_permutations_run} prompt permutations for the family-wise p). "
                        f"The permutation null of max |r| over {n_all} heads has median {null_med:.2f}."},
            "\n".join(verdict),
            f"The paper reports r = {PAPER['r']} (p {PAPER['p']}) for {PAPER['head']} of {PAPER['model']} over "
            f"{PAPER['n_prompts']} prompts, chosen from 144 heads without correction; under a null of independent "
            "heads the largest |r| of 144 at n = 20 has median about 0.60 and exceeds 0.70 about 8 % of the time.",
            {"figure": r.figures["heads_r"], "caption": "Pearson r per head (layer x head), paper vs corrected mode; "
                                                        "outlined heads survive the family-wise permutation test."},
        ]),
        ("Ablations", _ablation_blocks(gs, corr, ground, r.figures)),
        ("Phase diagram of one head", [
            f"Head **{r.best_head}** (the corrected mode's best) on {r.first_item.prompt!r}, every site free: spins of "
            f"length |x_i| in R^{r.phase_info['n_comp']}, the prompt field h x_i/|x_i| pinning each site to its own "
            f"token. Small h and low T: the head's own ordering wins (for a ferro head, all spins along the top "
            f"eigenvector of M_s: the repetition collapse); large h: the prompt wins. Mean-field T_c = "
            f"{r.phase_info['T_c_mean_field']:.4g} (energy units); parallel tempering across T, {st.n_sweeps} sweeps "
            "per point.",
            "\n".join(bnd_lines) if bnd_lines else "No boundary was detected on this grid.",
            {"figure": "phase_phase_diagram.png", "caption": f"{r.best_head}: susceptibility, |m| and C over (T, h) "
                                                             "with the boundaries (labelled by method)."},
        ]),
        ("Analytic vs sampled gaps", [
            f"A probe site over {vitem.correct!r} and {vitem.wrong!r} in the frozen field of {vitem.prompt!r} "
            f"({r.best_head}, residual inputs): E_B - E_A = {val.candidate_gap:.5g}. The closed form log P_A/P_B = "
            f"beta (E_B - E_A) equals exact enumeration to {float(np.max(np.abs(val.exact - val.analytic))):.1e} and "
            f"the heat-bath Monte Carlo within {max_z:.2f} standard errors at every T.",
            {"table": val.table(), "header": val.TABLE_HEADER},
            {"figure": "validate.png", "caption": "Log-odds vs 1/T: analytic line, exact and sampled points."},
        ]),
        ("Ground states and excitations", [
            f"Zero-temperature quench with restarts for every head on {r.first_item.prompt!r} (free spins, no prompt "
            "field), then the Hessian on the product of spheres: the number of zero (Goldstone) modes and the smallest "
            f"nonzero excitation. Median spin-wave gap {np.nanmedian(ground.spin_wave_gap):.3g}; heads with zero "
            f"modes: {int(np.sum(ground.n_zero_modes > 0))} of {n_all}.",
            {"figure": r.figures["ground"], "caption": "Spin-wave gap and Goldstone count per head."},
        ]),
        ("Run", [
            {"table": timing_rows, "header": ["step", "seconds"]},
            f"spinsim demo --model {st.model} --out {st.out}" + (" --quick" if st.quick else "") +
            f" (seed {st.seed}); {platform.processor() or platform.machine()}, python {platform.python_version()}. "
            "Files: study.h5 (all of it), phase.h5 (the resumable sweep), figures (PNG and PDF).",
        ]),
    ]
