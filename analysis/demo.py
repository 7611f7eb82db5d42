"""The whole study as one function (``spinsim demo``): heads, logit gaps in the paper's and the
corrected mode with family-wise statistics, ablations, one head's phase diagram with its
boundaries, the analytic-vs-sampled candidate-gap check, ground states of every head, the phase
atlas of every head at a quick grid (:mod:`.demo_atlas`), a report.

:func:`run_demo` takes a :class:`DemoSettings` and returns a :class:`DemoResult`. Each finished
stage is kept in ``settings.out`` (:mod:`.demo_store`), so a rerun of an interrupted demo resumes
without redoing it. It writes into ``settings.out``: ``study.h5`` (everything, rewritten once at the end with every group through its
own writer; SPEC section 6 layout, plus ``/phase``,
``/validate`` and ``/ground``), ``phase.h5`` (the resumable sweep), ``atlas.h5`` (the resumable
atlas), figures (PNG + PDF),
``report.md`` and ``report.html`` (self-contained; prose in :mod:`.demo_report`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from spinsim.models.answers import AnswerTokenizationError
from spinsim.probe import DegenerateCandidatesError, ParallelCandidatesError

__all__ = ["DemoSettings", "DemoResult", "run_demo", "N_ABLATED", "N_ABLATED_QUICK", "RESTARTS", "RESTARTS_QUICK"]

#: heads ablated by default: the ones with the largest |r| in either mode (--ablate-all: every head)
N_ABLATED, N_ABLATED_QUICK = 30, 24
#: quench restarts per head in the ground-state study
RESTARTS, RESTARTS_QUICK = 4, 3


@dataclass(frozen=True)
class DemoSettings:
    """What ``spinsim demo`` runs (the CLI flags of the same names; defaults as there).

    ``device``: ``cpu``, ``cuda`` or ``auto`` (Monte Carlo backend); ``executor``: ``local`` or
    ``dask`` (phase-diagram rows; ``dask`` needs ``scheduler``); ``overwrite``: discard the stages
    kept in ``out`` by an earlier run; ``progress``: progress bars with ETA on stderr. Raises
    ValueError on bad values.
    """

    model: str = "smollm2-135m"
    prompts: str = "paper20"
    n_permutations: int = 10_000
    n_sweeps: int = 300
    quick: bool = False
    ablate_all: bool = False
    executor: str = "local"
    scheduler: str | None = None
    alpha: float = 0.05
    seed: int = 0
    device: str = "auto"
    out: str = "out"
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.n_permutations < 1:
            raise ValueError(f"n_permutations must be an integer >= 1, got {self.n_permutations}")
        if self.n_sweeps < 20:
            raise ValueError(f"n_sweeps must be an integer >= 20, got {self.n_sweeps}")
        if self.executor not in ("local", "dask"):
            raise ValueError(f"unknown executor {self.executor!r}; allowed: 'local', 'dask'")
        if (self.executor == "dask") != bool(self.scheduler):
            raise ValueError("executor 'dask' needs a scheduler address, and only it takes one")

    @property
    def n_permutations_run(self) -> int:
        """Permutations actually run: at most 2000 with ``quick``."""
        return min(self.n_permutations, 2000) if self.quick else self.n_permutations


@dataclass
class DemoResult:
    """What :func:`run_demo` computed and wrote (paths under ``settings.out``).

    ``gap_study``: the :class:`~spinsim.analysis.study.GapStudy` (modes: corrected, paper);
    ``best_head``: the corrected mode's best head by |r|, whose phase diagram (``phase``, a
    SweepResult, with ``phase_info``) and candidate-gap check (``validation`` on
    ``validated_item``) were computed; ``ground``: the
    :class:`~spinsim.analysis.ground_study.GroundStudy` of every head on the first prompt;
    ``timings``: seconds per step; ``atlas``: the :class:`~spinsim.analysis.atlas_store.Atlas` of
    every head on the first prompt at a quick grid (:mod:`.demo_atlas`), ``atlas_figures`` its
    figures (name -> PNG path).
    """

    settings: DemoSettings
    model_id: str
    family: str
    weights_sha256: str
    gap_study: Any
    summary: list[str]
    best_head: str
    first_item: Any
    phase: Any
    phase_info: dict[str, Any]
    validation: Any
    validated_item: Any
    ground: Any
    figures: dict[str, str]
    timings: dict[str, float]
    total_s: float
    study_path: Path
    phase_path: Path
    resumed: tuple[str, ...] = ()                       # stages read back from an earlier run
    weights_note: str = ""                              # how the weights were stored (GGUF quantisation)
    report_paths: tuple[Path, Path] | None = None       # (report.md, report.html) once written
    atlas: Any = None                                   # every head's (T, h) diagram (atlas.h5, .demo_atlas)
    atlas_figures: dict[str, str] = field(default_factory=dict)


class _Clock:
    """Step timings; announces each step through ``log`` with the elapsed time."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.t0 = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.log = log

    def step(self, name: str, msg: str) -> "_Step":
        return _Step(self, name, msg)


class _Step:
    def __init__(self, clock: _Clock, name: str, msg: str) -> None:
        self.clock, self.name, self.msg = clock, name, msg

    def __enter__(self) -> None:
        self.t = time.perf_counter()
        self.clock.log(f"[{time.perf_counter() - self.clock.t0:6.1f} s] {self.msg} ...")

    def __exit__(self, *exc: Any) -> None:
        self.clock.timings[self.name] = time.perf_counter() - self.t


def _params(settings: DemoSettings, lm: Any, items: list) -> dict[str, Any]:
    """What identifies a demo run (a rerun must match to resume; :func:`.demo_store.start_run`);
    ``lm`` None: all but the weights' hash (checked before the model loads)."""
    import hashlib

    prompts = hashlib.sha256("\n".join(f"{it.prompt}\t{it.correct}\t{it.wrong}" for it in items).encode()).hexdigest()
    weights = {} if lm is None else {"weights_sha256": lm.weights_sha256}
    return {**weights, "prompts": settings.prompts,
            "prompts_sha256": prompts, "permutations": settings.n_permutations_run, "sweeps": settings.n_sweeps,
            "quick": settings.quick, "ablate_all": settings.ablate_all, "seed": settings.seed,
            "n_ablated": None if settings.ablate_all else (N_ABLATED_QUICK if settings.quick else N_ABLATED)}


def _bar(settings: DemoSettings, total: int, desc: str, unit: str) -> Any:
    from spinsim.progress import progress_bar

    return progress_bar(total, desc, unit, settings.progress)


def run_demo(settings: DemoSettings, log: Callable[[str], None] | None = None) -> DemoResult:
    """Run the whole study (module docstring) and write its files; ``log`` receives progress lines.

    Resumes: stages finished by an earlier run with the same parameters are read back from
    ``settings.out`` instead of being computed (:mod:`.demo_store`); raises
    :class:`.demo_store.DemoMismatchError` naming the first parameter that differs from the
    kept run's (``settings.overwrite`` starts afresh).
    """
    from spinsim.models.extract import spectra
    from spinsim.models.heads import extract_heads, head_label
    from spinsim.models.loading import load_model

    from . import demo_store as store
    from .ablation import ablation_study
    from .demo_atlas import demo_atlas
    from .demo_report import demo_figures, report_sections, weights_note
    from .figures import plot_sweep
    from .gaps import GapMode
    from .ground_study import read_ground_study, write_ground_study
    from .prompts import load_prompts, tokenize_items
    from .report import write_report
    from .study import run_gap_study, summary_lines
    from .validate import plot_validation, write_validation

    log = log or (lambda line: None)
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    n_perm = settings.n_permutations_run
    clock = _Clock(log)

    items = load_prompts(settings.prompts)
    if not settings.overwrite:                   # a changed parameter is refused before the model loads
        store.check_kept_run(out, _params(settings, None, items))
    with clock.step("load", f"loading {settings.model}"):
        lm = load_model(settings.model, progress=settings.progress)
        titems = tokenize_items(items, lm.encode)
    done = store.start_run(out, _params(settings, lm, items), overwrite=settings.overwrite)
    if done:
        log(f"resuming: kept from the previous run: {', '.join(done)}")
    modes = [GapMode.corrected(), GapMode.paper(lm.family)]
    heads_by_slice: dict = {}
    gaps_file = store.stage_path(out, "gaps")
    with clock.step("gaps", f"logit gaps of every head x {len(titems)} prompts, 2 modes, {n_perm} permutations"):
        if gaps_file.is_file():
            gs = store.read_gap_study(gaps_file, titems)
            heads = extract_heads(lm, "correct")
        else:
            with _bar(settings, len(modes), "gaps", "mode") as bar:
                gs = run_gap_study(lm, titems, modes, n_perm=n_perm, seed=settings.seed, heads=heads_by_slice,
                                   log=lambda line: bar.update(1))
            heads = heads_by_slice["correct"]
            gs.spectra = spectra(heads)
            _write_gaps_stage(gaps_file, lm, gs, settings)
    n_heads = heads.n_heads
    corr, paper = gs.results[0], gs.results[1]
    which = None if settings.ablate_all else _strongest_heads(corr, paper, n_heads, settings.quick)
    n_abl = len(which) if which else heads.n_layers * n_heads
    ab_file = store.stage_path(out, "ablation")
    with clock.step("ablation", f"zero-ablating {n_abl} heads one at a time on every prompt"):
        if ab_file.is_file():
            gs.ablation = store.read_ablation(ab_file)
        else:
            n_steps = len({l for l, _ in which}) if which else heads.n_layers   # progress: once per layer ablated
            with _bar(settings, n_steps, "ablation", "layer") as bar:
                gs.ablation = ablation_study(lm, heads, titems, which, ("zero",), "first",
                                             progress=lambda mode, layer: bar.update(1))
            store.write_ablation_stage(ab_file, gs.ablation, len(titems), model_id=lm.model_id,
                                       weights_sha256=lm.weights_sha256, seed=settings.seed)
    summary = summary_lines(gs, settings.alpha)
    for line in summary:
        log(line)

    # one head's phase diagram: the corrected mode's best head on the first prompt
    r_abs = np.abs(corr.stats.pearson_r)
    if not np.isfinite(r_abs).any():
        raise ValueError(f"every head's r is undefined in the corrected mode ({settings.prompts}: dL_actual is "
                         "constant over the prompts): no best head for the phase diagram")
    k_best = int(np.nanargmax(r_abs))
    best = head_label(k_best // n_heads, k_best % n_heads)
    item0 = items[0]
    with clock.step("phase", f"phase diagram of {best} on {item0.prompt!r}"):
        phase, phase_info = _phase_diagram(lm, best, item0.prompt, out, settings, heads)
    val_file = store.stage_path(out, "validate")
    with clock.step("validate", f"analytic vs sampled candidate gap of {best}"):
        if val_file.is_file():
            val, vattrs = store.read_validation(val_file)
            vitem = next(it for it in items if it.prompt == vattrs["prompt"])
        else:
            val, vitem = _validate_first_nondegenerate(lm, best, items, settings, heads)
            write_validation(val_file, val, head=best, prompt=vitem.prompt, correct=vitem.correct, wrong=vitem.wrong)
        plot_validation(val, out / "validate.png", title=f"{best}: {vitem.correct!r} vs {vitem.wrong!r}")
    ground_file = store.stage_path(out, "ground")
    with clock.step("ground", f"ground states and excitation gaps of all {heads.n_layers * n_heads} heads "
                              "on the first prompt"):
        if ground_file.is_file():
            ground = read_ground_study(ground_file)
        else:
            with _bar(settings, heads.n_layers, "ground states", "layer") as bar:
                ground = _ground_states(lm, heads, item0.prompt, settings.quick, settings.seed,
                                        log=lambda line: bar.update(1))
            write_ground_study(ground_file, ground, prompt=item0.prompt)

    with clock.step("atlas", f"phase atlas of all {heads.n_layers * n_heads} heads on the first prompt (quick grid)"):
        atlas, atlas_figs = demo_atlas(lm, item0.prompt, out, settings, log=log)

    _write_study(out / "study.h5", lm, gs, settings, store.stage_path(out, "phase"), phase_info, val, vitem, best,
                 ground, item0.prompt, clock.timings)
    with clock.step("figures", "figures and report"):
        figs = demo_figures(gs, ground, out, settings.alpha)
        plot_sweep(phase, out, stem="phase")
    result = DemoResult(settings, lm.model_id, lm.family, lm.weights_sha256, gs, summary, best, item0, phase,
                        phase_info, val, vitem, ground, figs, dict(clock.timings),
                        time.perf_counter() - clock.t0, out / "study.h5", out / "phase.h5", resumed=tuple(done),
                        weights_note=weights_note(getattr(lm.source, "gguf_file", None)), atlas=atlas,
                        atlas_figures=atlas_figs)
    result.report_paths = write_report(out, f"spinsim study of {lm.model_id}", report_sections(result))
    return result


def _write_gaps_stage(path: Path, lm: Any, gs: Any, settings: DemoSettings) -> None:
    from .study import write_gap_study

    write_gap_study(path, lm, gs, alpha=settings.alpha, seed=settings.seed, prompts_file=str(settings.prompts))


def _strongest_heads(corr: Any, paper: Any, n_heads: int, quick: bool) -> list[tuple[int, int]]:
    """(layer, head) of the heads with the largest |r| in either mode."""
    n_ablated = N_ABLATED_QUICK if quick else N_ABLATED
    score = np.fmax(np.nan_to_num(np.abs(corr.stats.pearson_r), nan=-1),
                    np.nan_to_num(np.abs(paper.stats.pearson_r), nan=-1))
    return [(int(k) // n_heads, int(k) % n_heads) for k in np.argsort(-score)[:n_ablated]]


def _phase_diagram(lm: Any, head: str, prompt: str, out: Path, settings: DemoSettings, heads: Any):
    """Free spins of the head with the prompt field h x_i/|x_i|: the (T, h) diagram."""
    from spinsim.models.hamiltonians import head_system
    from spinsim.phase import read_sweep, sweep

    from .boundaries import add_sweep_boundaries, mean_field_T_c

    system = head_system(lm, head, prompt, input="residual", heads=heads)     # rotary heads: exact per-site
    H = system.H
    try:
        Tc_raw, scale = float(mean_field_T_c(H)), "mean-field T_c of the head system"
    except TypeError:     # position-dependent (exact rotary) coupling: no single M for the mean field
        H0 = head_system(lm, head, prompt, input="residual", heads=heads, rotary="drop").H
        Tc_raw = float(mean_field_T_c(H0))
        scale = "mean-field T_c of the head's offset-0 coupling (rotary dropped), used only to place the grid"
    # rounded to 6 significant digits: the eigen-solver's last bits vary between runs, and the grid
    # must be bit for bit the same for a rerun to resume the sweep
    Tc = float(f"{Tc_raw:.6g}")
    m_mean = float(f"{float(np.mean(H.lengths)):.6g}")
    T = Tc * np.geomspace(0.05, 2.0, 8 if settings.quick else 10)
    # the head's molecular field at T_c is ~ n_comp T_c / m for O(n) spins (T_c^MF ~ 1/n): the prompt
    # field must reach that scale to compete with the head's own ordering
    hmax = float(f"{2.0 * H.n_comp * Tc / max(m_mean, 1e-12):.6g}")
    fields = np.linspace(0.0, hmax, 5 if settings.quick else 6)
    executor = None
    if settings.executor == "dask":
        from spinsim.executors import make_executor
        from spinsim.phase import run_task
        executor = make_executor("dask", run_task, scheduler=settings.scheduler)
    path = out / "phase.h5"
    info = {"head": head, "prompt": prompt, "T_c_mean_field": Tc, "T_scale": scale,
            "rotary": str(getattr(system, "rotary", "none")), "mean_spin_length": m_mean,
            "field_axis": "h x_i/|x_i| (prompt field, energy units)", "n_sites": H.n_sites, "n_comp": H.n_comp}
    if path.is_file():
        kept = read_sweep(path)
        if kept.done.all() and kept.boundaries:
            return kept, info                        # finished by an earlier run (parameters checked there)
    sw = sweep(H, T, fields, direction="prompt", out=path, overwrite=False,
               seed=settings.seed, progress=settings.progress, algorithm="pt", executor=executor,
               sweeps=max(50, settings.n_sweeps // (3 if settings.quick else 1)), backend=settings.device,
               attrs={"model_id": lm.model_id, "head": head, "prompt": prompt})
    add_sweep_boundaries(sw, H)    # the chi peak and mean-field lines, into phase.h5
    return sw, info


def _validate_first_nondegenerate(lm: Any, head: str, items: list, settings: DemoSettings, heads: Any):
    """The candidate-gap check on the first prompt whose two candidates can be told apart."""
    from spinsim.models.hamiltonians import head_system

    from .validate import validate_candidates

    backend = "cpu" if settings.device == "auto" else settings.device
    for it in items:
        try:      # first tokens that coincide: the probe cannot tell the answers apart, next item
            system = head_system(lm, head, it.prompt, input="residual", candidates=[it.correct, it.wrong],
                                 heads=heads)
        except AnswerTokenizationError:
            continue
        try:
            val = validate_candidates(system.H, sweeps=2000 if settings.quick else 4000, seed=settings.seed,
                                      backend=backend, labels=(it.correct, it.wrong))
        except (DegenerateCandidatesError, ParallelCandidatesError):
            continue
        return val, it
    raise ValueError(f"every prompt's two candidates are degenerate or parallel for {head}: nothing to validate")


def _ground_states(lm: Any, heads: Any, prompt: str, quick: bool, seed: int,
                   log: Callable[[str], None] | None = None) -> Any:
    """Ground states and spin-wave spectra of every head (free spins, no prompt field)."""
    from .ground_study import ground_study, model_builder

    return ground_study(heads, model_builder(lm, prompt, "residual", heads), restarts=RESTARTS_QUICK if quick
                        else RESTARTS, seed=seed, n_modes=6, log=log)


def _write_study(study_path: Path, lm: Any, gs: Any, settings: DemoSettings, phase_path: Path,
                 phase_info: dict, val: Any, vitem: Any, head: str, ground: Any, prompt: str,
                 timings: dict[str, float]) -> None:
    """Write the whole ``study.h5`` atomically, every group through its own writer: the gap study
    (:func:`~spinsim.analysis.study.write_gap_groups`), ``/phase`` (the sweep as stored in
    ``phase.h5``, :func:`spinsim.phase.store.write_sweep`), ``/validate`` and ``/ground``."""
    from spinsim.io import atomic_h5, to_attr
    from spinsim.phase import read_sweep
    from spinsim.phase.store import write_sweep

    from .ground_study import write_ground_group
    from .study import write_gap_groups
    from .validate import write_validation_group

    sweep = read_sweep(phase_path)          # with the boundaries added after the run
    with atomic_h5(study_path) as f:
        write_gap_groups(f, lm, gs, alpha=settings.alpha, seed=settings.seed, prompts_file=str(settings.prompts))
        g = f.create_group("phase")
        write_sweep(g, sweep)
        for k, v in phase_info.items():
            g.attrs[k] = to_attr(v)
        write_validation_group(f.create_group("validate"), val, head=head, prompt=vitem.prompt,
                               units="log-odds (natural log); T in energy units")
        write_ground_group(f.create_group("ground"), ground, prompt=prompt)
        f.attrs["timings_s"] = str({k: round(v, 2) for k, v in timings.items()})
