"""End to end: `spinsim demo` on a tiny random Llama (reduced settings); its files open, its gaps
equal a fresh `spinsim gaps` run with the same seed, and its figures show what study.h5 holds
(:func:`check_demo_outputs`, run by test_demo_resume on an interrupted and resumed demo), and its
usage errors."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from _figures import panels as _panels
from _h5layout import check_file
from spinsim.analysis.atlas_store import read_atlas
from spinsim.analysis.demo import RESTARTS_QUICK
from spinsim.analysis.demo_atlas import GRID_QUICK
from spinsim.analysis.ground_study import read_ground_study
from spinsim.cli import main
from spinsim.phase import read_sweep


def _check_figures(saved, a):
    """Each demo figure draws the numbers study.h5 holds."""
    paper, corrected = _panels(saved["heads_r.png"])
    for ax, mode in ((paper, "paper"), (corrected, "corrected")):
        assert ax.get_title() == f"r(dL_theory, dL_actual), {mode} mode"
        np.testing.assert_array_equal(np.ma.filled(ax.images[0].get_array(), np.nan), a[f"{mode}/stats/pearson_r"][()])
    ground_panels = _panels(saved["ground.png"])
    np.testing.assert_allclose(ground_panels[0].images[0].get_array(),
                               np.log10(np.abs(a["ground/spin_wave_gap"][()]) + 1e-12))
    if np.any(a["ground/n_zero_modes"][()] > 0):
        np.testing.assert_array_equal(ground_panels[1].images[0].get_array(), a["ground/n_zero_modes"][()])
    else:                       # an all-zero Goldstone panel is not drawn (the report says why)
        assert len(ground_panels) == 1
    v = _panels(saved["validate.png"])[0]
    np.testing.assert_allclose(v.lines[1].get_xdata(), 1 / a["validate/T"][()])
    np.testing.assert_allclose(v.lines[1].get_ydata(), a["validate/exact"][()])
    chi = _panels(saved["phase_phase_diagram.png"])[0]
    np.testing.assert_allclose(np.ma.filled(chi.collections[0].get_array(), np.nan).reshape(-1),
                               a["phase/sweep/susceptibility"][()].reshape(-1))
    meas, pred = a["ablation/zero/measured"][()].ravel(), a["ablation/zero/predicted"][()].ravel()
    ok = np.isfinite(meas) & np.isfinite(pred)
    points = _panels(saved["ablation.png"])[0].lines[0]
    np.testing.assert_allclose(points.get_xdata(), pred[ok])
    np.testing.assert_allclose(points.get_ydata(), meas[ok])


def check_demo_outputs(out, saved, model: str, tmp_path, capsys) -> None:
    """What a finished ``spinsim demo --quick --permutations 300 --seed 4`` in ``out`` must hold
    (``saved``: the figures drawn, from :func:`record_saved_figures`): every file, figures as PNG
    and PDF that draw the numbers of study.h5, files that pass the file checker, and gaps equal
    to a fresh ``spinsim gaps`` run with the same seed. Run by test_demo_resume on a demo that
    was interrupted and resumed (one demo run serves both checks)."""
    for name in ("study.h5", "phase.h5", "report.md", "report.html"):
        assert (out / name).is_file(), name
    for name in ("heads_r", "validate", "ground", "ablation", "phase_phase_diagram"):
        assert (out / f"{name}.png").is_file() and (out / f"{name}.pdf").is_file() and f"{name}.png" in saved
    for name in ("study.h5", "phase.h5"):          # every file through the one writer: scales resolve
        check_file(out / name, capsys)
    ground = read_ground_study(out / "study.h5")
    sweep = read_sweep(out / "study.h5", group="phase")
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "family-wise" in html
    g = tmp_path / "gaps.h5"
    assert main(["gaps", "--model", model, "--permutations", "300", "--seed", "4", "--out", str(g)]) == 0
    with h5py.File(out / "study.h5") as a, h5py.File(g) as b:
        for mode in ("corrected", "paper"):
            for ds in ("gaps/theory", "gaps/actual", "stats/pearson_r", "stats/fwer_p", "stats/bh_q"):
                np.testing.assert_array_equal(a[f"{mode}/{ds}"][()], b[f"{mode}/{ds}"][()], err_msg=f"{mode}/{ds}")
        assert a["phase/sweep/done"][()].all()
        alone = read_sweep(out / "phase.h5")           # /phase is the sweep of phase.h5, boundaries included
        np.testing.assert_array_equal(sweep.susceptibility, alone.susceptibility)
        assert set(sweep.boundaries) == set(alone.boundaries) and sweep.attrs["head"] == alone.attrs["head"]
        np.testing.assert_array_equal(ground.E0, a["ground/E0"][()])
        assert ground.meta["prompt"] == a["ground"].attrs["prompt"] and ground.restarts == RESTARTS_QUICK
        v = a["validate"]
        assert np.all(np.abs(v["z"][()]) < 5)
        np.testing.assert_allclose(v["exact"][()], v["analytic"][()], rtol=1e-9, atol=1e-9)
        assert a["ground/E0"].shape == (3, 4) and np.all(np.isfinite(a["ground/E0"][()]))
        assert "spinsim_version" in a.attrs and "timings_s" in a.attrs
        _check_figures(saved, a)
    _check_atlas(out, saved, html, capsys)


def _check_atlas(out, saved, html, capsys) -> None:
    """The demo's atlas: every head of the model at the quick grid, complete, summarised, its chi
    small multiples drawing the file's numbers, its section in the report."""
    check_file(out / "atlas.h5", capsys)
    at = read_atlas(out / "atlas.h5")
    assert at.complete and len(at.heads) == 12 and at.heads[0] == "L0H0"      # tiny model: 3 layers x 4 heads
    np.testing.assert_array_equal(at.T, GRID_QUICK.T)
    np.testing.assert_array_equal(at.h, GRID_QUICK.h)
    assert np.all(at.sweeps == GRID_QUICK.sweeps) and at.summary["T_c"].shape == (12,)
    assert set(at.summary["kind"]) <= {"uniform", "staggered", "pinned", "disordered", "unresolved"}
    for name in ("atlas_chi", "atlas_maps"):
        assert (out / f"{name}.png").is_file() and (out / f"{name}.pdf").is_file() and f"{name}.png" in saved
    ax = next(x for x in saved["atlas_chi.png"].axes if x.get_title() == "L0H0")
    ok = ~at.flagged[0, 0, 0, 0]
    np.testing.assert_allclose(ax.lines[0].get_xdata(), at.T[ok])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), at.values["susceptibility"][0, 0, 0, 0][ok])
    assert "Phase atlas of every head" in html and "of 12</strong> heads" in html
    import re
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (out / "report.md").read_text())
    assert {"atlas_maps.png", "atlas_chi.png"} <= set(images)       # the report's figures, relative to out
    assert all((out / name).is_file() for name in images), images


def test_demo_bad_alpha_or_out_is_a_usage_error(tmp_path, capsys, monkeypatch):
    import spinsim.analysis.demo as demo_mod

    monkeypatch.setattr(demo_mod, "run_demo", lambda *a, **k: pytest.fail("the demo ran with a bad --alpha"))
    for bad in ("0", "1", "3"):
        assert main(["demo", "--alpha", bad, "--out", str(tmp_path / "d")]) == 2
        assert f"argument --alpha: '{bad}': allowed: a number in (0, 1)" in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main(["demo", "--out", str(afile)]) == 2
    assert f"--out '{afile}' is a file; give a folder" in capsys.readouterr().err
