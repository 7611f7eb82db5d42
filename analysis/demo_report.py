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

from .demo_atlas import atlas_blocks

__all__ = ["PAPER", "demo_figures", "report_sections"]

#: what the paper reports (Bhattacharjee & Lee; SPEC section 0)
PAPER = {"model": "GPT-2 small", "head": "L3H5", "r": -0.70, "p": "< 1e-3 (uncorrected, best of 144 heads)",
         "n_prompts": 20}
#: the paper tested here and the framework it tests
CITATION = ("S. Bhattacharjee and S.-C. Lee, \"Testing the spin-bath view of self-attention: a Hamiltonian "
            "analysis of GPT-2 Transformer\", Phys. Rev. E 113, 015308 (2026), arXiv:2507.00683")
FRAMEWORK = ("Z. Huo and N. F. Johnson, \"Capturing AI's Attention: Physics of Repetition, Hallucination, Bias "
             "and Beyond\", arXiv:2504.04600")
#: |z| above which a Monte Carlo value is reported as a deviation, not as agreement
Z_DEVIATION = 3.0


def weights_note(gguf_file: str | None) -> str:
    """How the weights were stored: the GGUF quantisation named by the file (e.g. ``...Q4_1.gguf``:
    "4-bit Q4_1"), or full precision. Every number of the study is of these weights."""
    import re

    if not gguf_file:
        return "full-precision weights (safetensors), float32"
    m = re.search(r"[.-]((?:I?Q)(\d+)_?[A-Z0-9_]*|BF16|F16|F32)\.gguf$", gguf_file, re.IGNORECASE)
    if not m:
        return f"GGUF file {gguf_file}, dequantised to float32"
    qt = m.group(1).upper()
    bits = f"{m.group(2)}-bit " if m.group(2) else ""
    return (f"{bits}{qt} quantised GGUF weights ({gguf_file}), dequantised to float32 for this study: every number "
            "below is of the quantised model, not of the original bf16 checkpoint")


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
    handles: dict[str, Any] = {}
    for ax, res, name in ((axes[0], paper, "paper mode"), (axes[1], corr, "corrected mode")):
        mark = (res.stats.fwer_p < alpha).reshape(n_layers, n_heads)
        head_grid(res.grid("pearson_r"), ax=ax, label="Pearson r", annotate=n_heads * n_layers <= 300, mark=mark,
                  mark_label=f"family-wise p < {alpha}", title=f"r(dL_theory, dL_actual), {name}", fmt="{:.1f}",
                  vmin=-1.0, vmax=1.0, legend=False)              # one colour scale for the two panels
        handles.update(zip(*ax.get_legend_handles_labels()[::-1]))
    if handles:                                                    # below the panels, never over a cell
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", frameon=False, fontsize=9)
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
        ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.14))    # below the axes
        save(fig, out / "ablation")
        figs["ablation"] = "ablation.png"
    if np.nanmax(np.nan_to_num(ground.n_zero_modes, nan=0.0)) > 0:
        plot_ground_study(ground, out / "ground")
    else:       # every count is 0: a panel of zeros says nothing; the report states the count and why
        fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * n_heads + 2.0), max(4.0, 0.3 * n_layers + 1.5)),
                               constrained_layout=True)
        head_grid(np.log10(np.abs(ground.spin_wave_gap) + 1e-12), ax=ax, center=None, cmap="viridis",
                  label="log10 spin-wave gap", annotate=False, symmetric=False,
                  title="lowest nonzero excitation (log10, energy units)")
        save(fig, out / "ground")
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
        n_abl, n_all = len(ab.heads), gs.n_layers * gs.n_heads
        which = "every head" if n_abl == n_all else f"the {n_abl} heads (of {n_all}) with the largest |r| in either mode"
        blocks.append({"figure": figs["ablation"], "caption": f"Measured vs predicted shift: {which}, each zero-ablated "
                                                                f"alone, x {ab.measured.shape[1]} prompts."})
    return blocks


_ROTARY = {"exact": "the exact rotary head (per-site factors: every pair's score as the model computes it)",
           "drop": "offset-0 coupling (rotary positions dropped)", "none": "no rotary positions",
           "fold": "rotary folded onto a probe"}


#: below this median swap acceptance a tempering ladder is said not to exchange
NO_EXCHANGE = 0.01


def _exchange_note(ph: Any) -> str:
    """How the temperatures were coupled, from the sweep's own exchange diagnostics: parallel
    tempering that exchanged, or a ladder whose neighbours (almost) never swapped, which is then
    said plainly (each T is in effect an independent chain; more sweeps will not mix it)."""
    tp = getattr(ph, "tempering", None)
    if not tp:
        return "one chain per temperature"
    acc = np.asarray(tp["swap_acceptance"], float)
    acc = acc[np.isfinite(acc)]
    if acc.size == 0:
        return "parallel tempering across T"
    med = float(np.median(acc))
    trips = np.asarray(tp.get("n_round_trips", []), float)
    trips = int(np.nansum(trips)) if trips.size else 0
    if med < NO_EXCHANGE:
        return (f"parallel tempering across T, **but the ladder did not exchange**: median swap acceptance "
                f"{med:.2g} over {acc.size} neighbouring pairs (largest {float(acc.max()):.2g}), {trips} round trips: "
                "the energy histograms of neighbouring temperatures barely overlap (a head of many O(n) spins has "
                "a large heat capacity), so every temperature is in effect an independent heat-bath chain; a "
                "denser T ladder, not more sweeps, would let them exchange")
    return (f"parallel tempering across T (median swap acceptance {med:.2g} over {acc.size} neighbouring "
            f"pairs, {trips} round trips)")


def _row_flags(ph: Any, k: int, warnings_k: list[str]) -> list[str]:
    """Row k's warnings for the table, condensed: the split R-hat flags (one per temperature in
    the file) as one entry read from the row's R-hat values, then every other warning once."""
    from spinsim.observables import RHAT_WARN

    out: list[str] = []
    rhat = np.asarray(ph.data["rhat"][k], float) if "rhat" in getattr(ph, "data", {}) else None
    if rhat is not None:
        bad = np.flatnonzero(np.nan_to_num(rhat, nan=1.0) > RHAT_WARN)
        if bad.size:
            Ts = ", ".join(f"{float(ph.T[i]):.3g}" for i in bad)
            out.append(f"split R-hat > {RHAT_WARN:g} at {bad.size} of {rhat.size} temperatures (T = {Ts}; largest "
                       f"{float(np.nanmax(rhat[bad])):.3f}): not converged or metastable there")
    for w in warnings_k:
        if rhat is not None and "split R-hat" in w:      # summarised above, from the values
            continue
        if w not in out:
            out.append(w)
    return out


def _phase_blocks(r: Any) -> list[Any]:
    """Prose, boundary-point table (each point with the flags the sweep file gives it), warning and
    figure of the phase-diagram section."""
    st, ph = r.settings, r.phase
    bnd = getattr(ph, "boundaries", {}) or {}
    blocks: list[Any] = [
        f"Head **{r.best_head}** (the corrected mode's best) on {r.first_item.prompt!r}, every site free: spins of "
        f"length |x_i| in R^{r.phase_info['n_comp']}, the prompt field h x_i/|x_i| pinning each site to its own "
        f"token. Small h and low T: the head's own ordering wins (for a ferro head, all spins along the top "
        f"eigenvector of M_s: the repetition collapse); large h: the prompt wins. Coupling: "
        f"{_ROTARY.get(str(r.phase_info.get('rotary', 'none')), r.phase_info.get('rotary', 'none'))}. Temperature "
        f"scale: T_c = {r.phase_info['T_c_mean_field']:.4g} (energy units), the "
        f"{r.phase_info.get('T_scale', 'mean-field T_c of the head system')}; {_exchange_note(ph)}, "
        f"{st.n_sweeps} sweeps per point.",
        "\n".join(f"- `{name}`: {line.get('method', name)}" for name, line in bnd.items())
        or "No boundary was detected on this grid."]
    chi = bnd.get("chi_peak")
    warn = list(getattr(ph, "row_warnings", [[] for _ in ph.h]))
    if chi is not None:
        T, h = np.asarray(chi["T"], float), np.asarray(chi["h"], float)
        err = np.asarray(chi.get("T_err") if chi.get("T_err") is not None else np.full(T.size, np.nan), float)
        edge = np.asarray(chi.get("at_edge") if chi.get("at_edge") is not None else np.zeros(T.size), bool)
        rows, n_flag = [], 0
        for k in range(T.size):
            flags = (["chi maximal at the grid edge: no interior peak"] if edge[k] else []) + _row_flags(ph, k, warn[k])
            n_flag += bool(warn[k])
            rows.append([float(h[k]), float(T[k]), float(err[k]), "; ".join(flags) or "none"])
        blocks.append({"table": rows, "header": ["h", "T at the chi peak", "+- (1 sigma)", "warnings in the file"],
                       "caption": "The susceptibility-peak boundary point by point, with every warning the sweep "
                                  "file holds for its row."})
        if n_flag:
            blocks.append({"warning": f"{n_flag} of {T.size} chi-peak points come from runs the sweep file flags "
                                      "(see the table); they are drawn hollow and grey in the figure, apart from the "
                                      "line through the others. Do not read a boundary from them; rerun with more "
                                      "--sweeps (and, where the ladder did not exchange, a denser T grid)."})
    blocks.append({"figure": "phase_phase_diagram.png",
                   "caption": f"{r.best_head}: susceptibility, |m| and C over (T, h) with the boundaries (labelled by "
                              "method; hollow grey points: runs flagged unreliable)."})
    return blocks


def _validation_blocks(r: Any) -> list[Any]:
    """The analytic-vs-sampled check, worded by its largest |z| (above 3: a deviation)."""
    val, vitem = r.validation, r.validated_item
    z = np.abs(np.asarray(val.z, float))
    k = int(np.nanargmax(z))
    exact = float(np.max(np.abs(val.exact - val.analytic)))
    text = (f"A probe site over {vitem.correct!r} and {vitem.wrong!r} in the frozen field of {vitem.prompt!r} "
            f"({r.best_head}, residual inputs): E_B - E_A = {val.candidate_gap:.5g}. The closed form log P_A/P_B = "
            f"beta (E_B - E_A) equals exact enumeration to {exact:.1e}. ")
    blocks: list[Any] = []
    if z[k] > Z_DEVIATION:
        n_dev = int(np.sum(z > Z_DEVIATION))
        text += (f"The heat-bath Monte Carlo **deviates** from it: {z[k]:.1f} standard errors at T = {val.T[k]:.4g} "
                 f"({n_dev} of {z.size} temperatures beyond {Z_DEVIATION:g} sigma).")
        blocks.append({"warning": f"a {z[k]:.1f}-sigma Monte Carlo deviation at T = {val.T[k]:.4g}: either the run is "
                                  "too short for its error bar or the sampler is biased there; it is not a pass."})
    else:
        text += (f"The heat-bath Monte Carlo agrees with it within {z[k]:.2f} standard errors at every T "
                 f"(all |z| <= {Z_DEVIATION:g}).")
    return [text, *blocks, {"table": val.table(), "header": val.TABLE_HEADER},
            {"figure": "validate.png", "caption": "Log-odds vs 1/T: analytic line, exact and sampled points."}]


def _ground_blocks(r: Any, n_all: int) -> list[Any]:
    g = r.ground
    n_zero = int(np.sum(np.nan_to_num(g.n_zero_modes) > 0))
    text = (f"Zero-temperature quench with restarts for every head on {r.first_item.prompt!r} (free spins, no prompt "
            "field), then the Hessian on the product of spheres: the number of zero (Goldstone) modes and the smallest "
            f"nonzero excitation. Median spin-wave gap {np.nanmedian(g.spin_wave_gap):.3g}; heads with zero modes: "
            f"{n_zero} of {n_all}.")
    if n_zero == 0:
        text += (" No head has a Goldstone mode: the query/key biases (fields on the sites) and the anisotropic "
                 "coupling M break the O(n) rotation symmetry, so a panel of Goldstone counts would be all zeros "
                 "and is not drawn.")
        cap = "Spin-wave gap per head (log10; the Goldstone count is 0 for every head)."
    else:
        cap = "Spin-wave gap and Goldstone (zero-mode) count per head."
    return [text, {"figure": r.figures["ground"], "caption": cap}]


def _excluded_lines(gs: Any) -> str:
    out = []
    for res in gs.results:
        for p, why in getattr(res, "excluded", []):
            out.append(f"- {res.mode.name} mode leaves out prompt {p}: {why}")
    return "\n".join(out)


def report_sections(r: Any) -> list[tuple[str, list[Any]]]:
    """The report of a :class:`~spinsim.analysis.demo.DemoResult` (sections for ``write_report``)."""
    st, gs = r.settings, r.gap_study
    corr, paper = gs.results[0], gs.results[1]
    n_layers, n_heads = gs.n_layers, gs.n_heads
    n_all = n_layers * n_heads
    alpha, ground = st.alpha, r.ground
    null_med = float(np.median(corr.stats.null_max_abs_r))
    verdict = []
    for name, sv in (("paper", _survivors(paper, alpha, n_heads)), ("corrected", _survivors(corr, alpha, n_heads))):
        fw = sv["permutation"]
        verdict.append(f"- {name} mode: {len(fw)} of {n_all} heads survive the permutation family-wise test at "
                       f"alpha = {alpha}" + (f" ({', '.join(fw[:10])})" if fw else " (none)") +
                       f"; Bonferroni {len(sv['bonferroni'])}, BH-FDR {len(sv['bh'])}, "
                       f"uncorrected {len(sv['uncorrected'])}.")
    timing_rows = [[k, float(v)] for k, v in r.timings.items()] + [["total", float(r.total_s)]]
    return [
        ("What this is", [
            f"Model **{r.model_id}** ({r.family}, {n_layers} layers x {n_heads} heads): {r.weights_note}; "
            f"weights sha256 `{r.weights_sha256[:16]}...`. "
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
            f"The paper tested: {CITATION}. The spin-bath framework it tests: {FRAMEWORK}.",
        ]),
        ("Logit gaps and family-wise statistics", [
            {"table": _gap_rows(corr, paper, alpha, n_heads),
             "header": ["mode", "input / o-slice / candidates", "best head", "r", "p (uncorrected)",
                        "family-wise p", "uncorrected", "Bonferroni", "BH-FDR", "permutation"],
             "caption": f"Best head by |r| per mode and the number of heads significant at alpha = {alpha} "
                        f"under each correction ({st.n_permutations_run} prompt permutations for the family-wise p). "
                        f"The permutation null of max |r| over {n_all} heads has median {null_med:.2f}."},
            "\n".join(verdict),
            *([{"warning": "prompts left out of a mode (their comparison is undefined there):\n\n"
                           + _excluded_lines(gs)}] if _excluded_lines(gs) else []),
            f"The paper reports r = {PAPER['r']} (p {PAPER['p']}) for {PAPER['head']} of {PAPER['model']} over "
            f"{PAPER['n_prompts']} prompts, chosen from 144 heads without correction; under a null of independent "
            "heads the largest |r| of 144 at n = 20 has median about 0.60 and exceeds 0.70 about 8 % of the time.",
            {"figure": r.figures["heads_r"], "caption": "Pearson r per head (layer x head), paper vs corrected mode; "
                                                        "outlined heads survive the family-wise permutation test."},
        ]),
        ("Ablations", _ablation_blocks(gs, corr, ground, r.figures)),
        *([("Phase atlas of every head", atlas_blocks(r.atlas, r.atlas_figures))] if r.atlas is not None else []),
        ("Phase diagram of one head", _phase_blocks(r)),
        ("Analytic vs sampled gaps", _validation_blocks(r)),
        ("Ground states and excitations", _ground_blocks(r, n_all)),
        ("Run", [
            {"table": timing_rows, "header": ["step", "seconds"]},
            f"spinsim demo --model {st.model} --out {st.out}" + (" --quick" if st.quick else "") +
            f" (seed {st.seed}); {platform.processor() or platform.machine()}, python {platform.python_version()}. "
            "Files: study.h5 (all but the atlas), phase.h5 (the resumable sweep), atlas.h5 (the resumable atlas), "
            "stages/ (what a rerun resumes from), "
            "figures (PNG and PDF)." + (f" Stages read back from an earlier run: {', '.join(r.resumed)} (their "
                                        "timings above are the time to read them)." if r.resumed else ""),
        ]),
    ]
