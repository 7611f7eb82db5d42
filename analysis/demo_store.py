"""What ``spinsim demo`` keeps in its output folder so that a rerun continues where it stopped.

Layout of ``out/``::

    stages/run.json        the parameters of the run (model and weights hash, prompts, settings);
                           a rerun with other values is refused naming the first that differs
    stages/gaps.h5         logit gaps and statistics of both modes (the ``spinsim gaps`` layout)
    stages/ablation.h5     /ablation (prompt, layer, head) with its scales
    phase.h5               the (T, h) sweep, resumable row by row (:mod:`spinsim.phase.store`)
    stages/validate.h5     the analytic-vs-sampled candidate-gap check
    stages/ground.h5       ground states of every head
    study.h5, figures, report.md, report.html   assembled from the stages at the end (cheap)

Every stage file is written whole through :func:`spinsim.io.atomic_h5` only once its stage has
finished, so a stage file that exists is complete; ``kill -9`` at any instant costs at most the
stage in progress (the sweep: the row in progress). ``--overwrite`` removes the stages and
``phase.h5`` first. The readers here rebuild the objects the report and ``study.h5`` need.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from spinsim.io import SpinsimFileError, atomic_h5, from_attr, open_spinsim, read_record, root_attrs

__all__ = ["DemoMismatchError", "STAGE_FILES", "stage_path", "start_run", "read_gap_study", "write_ablation_stage",
           "read_ablation", "read_validation"]

#: stage name -> file under out/ (the sweep keeps its own resumable file)
STAGE_FILES = {"gaps": "stages/gaps.h5", "ablation": "stages/ablation.h5", "phase": "phase.h5",
               "validate": "stages/validate.h5", "ground": "stages/ground.h5", "atlas": "atlas.h5"}
#: stages whose file resumes row by row (it exists before the stage has finished)
RESUMABLE = ("phase", "atlas")
_RUN = "stages/run.json"


class DemoMismatchError(SpinsimFileError):
    """``out/`` holds a demo run with different parameters (the message names the first)."""


def stage_path(out: str | os.PathLike, stage: str) -> Path:
    """The file of ``stage`` (a key of :data:`STAGE_FILES`) under ``out``."""
    return Path(out) / STAGE_FILES[stage]


def _first_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    for k, v in new.items():
        if k not in old:
            return f"{k!r} is new (this run {v!r})"
        if old[k] != v:
            return f"{k!r} differs (the kept run has {old[k]!r}, this run {v!r})"
    return None


def check_kept_run(out: str | os.PathLike, params: Mapping[str, Any]) -> None:
    """Before the model loads: raise :class:`DemoMismatchError` when ``out`` holds a run whose
    recorded parameters differ from ``params`` in a key both have (``params`` may leave out what
    needs the model, e.g. the weights' hash; :func:`start_run` checks everything later)."""
    run = Path(out) / _RUN
    if not run.is_file():
        return
    old = json.loads(run.read_text())
    new = json.loads(json.dumps(dict(params)))
    diff = _first_difference(old, {k: v for k, v in new.items() if k in old})
    if diff:
        raise DemoMismatchError(f"{out} holds a demo run with other parameters: {diff}; rerun with --overwrite "
                                "to start afresh, or choose another --out")


def start_run(out: str | os.PathLike, params: Mapping[str, Any], overwrite: bool = False) -> list[str]:
    """Record ``params`` (JSON-able, in a fixed order) for the run in ``out``, or check them
    against the kept run's. Returns the names of the stages already finished.

    ``overwrite``: remove every stage file, ``phase.h5`` and ``atlas.h5`` first. Raises
    :class:`DemoMismatchError` naming the first differing parameter when ``out`` holds a run with
    other parameters (and ``overwrite`` is False).
    """
    out = Path(out)
    run = out / _RUN
    params = json.loads(json.dumps(dict(params)))          # as it will read back
    if overwrite:
        shutil.rmtree(out / "stages", ignore_errors=True)
        for s in RESUMABLE:
            stage_path(out, s).unlink(missing_ok=True)
    if run.is_file():
        old = json.loads(run.read_text())
        diff = _first_difference(old, params) or _first_difference(params, old)
        if diff:
            raise DemoMismatchError(f"{out} holds a demo run with other parameters: {diff}; rerun with --overwrite "
                                    "to start afresh, or choose another --out")
    else:
        if any(stage_path(out, s).exists() for s in STAGE_FILES):
            raise DemoMismatchError(f"{out} holds demo files without a record of their parameters "
                                    f"({_RUN} is missing); rerun with --overwrite to start afresh")
        run.parent.mkdir(parents=True, exist_ok=True)
        tmp = run.with_name(f".{run.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(params, indent=1))
        os.replace(tmp, run)
    return [s for s in STAGE_FILES if s not in RESUMABLE and stage_path(out, s).is_file()]


def read_gap_study(path: str | os.PathLike, items: Sequence[Any]) -> Any:
    """A :class:`~spinsim.analysis.study.GapStudy` from a gaps file (``spinsim gaps`` layout, the
    demo's ``stages/gaps.h5``); ``items`` are the study's tokenised prompts (the file keeps their
    texts, checked here, not their token ids)."""
    from spinsim.models.extract import Spectra

    from .gaps import GapMode
    from .stats import HeadStats
    from .study import GapStudy, ModeGaps, ModeResult, ModeStats

    with open_spinsim(path) as f:
        texts = [from_attr(t) for t in f["prompts/text"][()]]
        if texts != [it.item.prompt for it in items]:
            raise DemoMismatchError(f"{path}: its prompts differ from this run's")
        results = []
        for name in from_attr(f.attrs["modes"]):
            g = f[name]
            mode = GapMode(input=from_attr(g.attrs["input_mode"]), o_slice=from_attr(g.attrs["o_slice"]),
                           candidates=from_attr(g.attrs["candidates_mode"]), biases=from_attr(g.attrs["biases"]),
                           final_norm=from_attr(g.attrs["final_norm"]), name=from_attr(g.attrs["mode_name"]))
            gaps = ModeGaps(**read_record(ModeGaps, g["gaps"]))
            st = read_record(ModeStats, g["stats"])
            flat = {k: np.asarray(st[k]).reshape(-1) for k in ("pearson_r", "pearson_p", "spearman_rho", "spearman_p",
                                                                "bonferroni_p", "bh_q", "fwer_p")}
            included = (np.ones(len(items), bool) if gaps.included is None
                        else np.asarray(gaps.included, bool))
            whys = [] if isinstance(gaps.excluded, str) else list(gaps.excluded)
            excluded = list(zip((int(p) for p in np.flatnonzero(~included)), whys))
            stats = HeadStats(**flat, null_max_abs_r=np.asarray(st["null_max_abs_r"]),
                              n_perm=int(np.asarray(st["null_max_abs_r"]).size), n_prompts=int(included.sum()))
            results.append(ModeResult(mode, np.asarray(gaps.theory), np.asarray(gaps.actual), stats, excluded))
        L, H = int(f.attrs["n_layers"]), int(f.attrs["n_heads"])
        spectra = Spectra(**read_record(Spectra, f["spectrum"])) if "spectrum" in f else None
        if spectra is not None:
            spectra.ferro_class = np.asarray([from_attr(x) for x in np.ravel(spectra.ferro_class)],
                                             dtype=object).reshape(L, H)
    return GapStudy(list(items), results, L, H, spectra=spectra)


def write_ablation_stage(path: str | os.PathLike, ab: Any, n_prompts: int, **attrs: Any) -> None:
    """``/ablation`` of ``ab`` with its prompt/layer/head scales, atomically."""
    from .study import write_ablation, write_scales

    with atomic_h5(path) as f:
        for k, v in root_attrs("ablation", **attrs).items():
            f.attrs[k] = v
        write_scales(f, n_prompts, ab.n_layers, ab.n_heads)
        write_ablation(f, ab)


def read_ablation(path: str | os.PathLike) -> Any:
    """The :class:`~spinsim.analysis.ablation.AblationResult` of a file with ``/ablation``."""
    from spinsim.models.heads import parse_head

    from .ablation import AblationResult
    from .study import AblationModeRecord, AblationRecord

    with open_spinsim(path) as f:
        g = f["ablation"]
        rec = AblationRecord(**read_record(AblationRecord, g))
        modes = [m for m in g if m != "clean" and "measured" in g[m]]
        recs = [AblationModeRecord(**read_record(AblationModeRecord, g[m])) for m in modes]
        L, H = f["layer"].size, f["head"].size
    labels = [rec.ablated_heads] if isinstance(rec.ablated_heads, str) else list(rec.ablated_heads)
    clean = np.asarray(rec.clean)
    whys = [] if isinstance(rec.excluded, str) else list(rec.excluded)       # excluded items: NaN clean gaps
    excluded = list(zip((int(p) for p in np.flatnonzero(np.isnan(clean))), whys))
    return AblationResult(tuple(modes), rec.candidates_mode, [parse_head(x) for x in labels], clean,
                          np.stack([r.measured for r in recs]), np.stack([r.predicted for r in recs]), L, H,
                          excluded=excluded)


def read_validation(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """``(CandidateGapValidation, root attributes)`` of a ``write_validation`` file."""
    from .validate import CandidateGapValidation

    with open_spinsim(path) as f:
        kw = read_record(CandidateGapValidation, f["validate"])
        kw["labels"] = tuple(from_attr(x) for x in kw["labels"])
        attrs = {k: from_attr(v) for k, v in f.attrs.items()}
    return CandidateGapValidation(**kw), attrs
