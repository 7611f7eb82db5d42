"""Atlas figures by content: one chi panel per head at its (layer, head) place with flagged
points as red crosses, the maps, T_c(N), and the prediction panels titled with their verdicts."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _figures import panels, record_saved_figures  # noqa: E402
from test_atlas_summary import _atlas  # noqa: E402

from spinsim.analysis.atlas_predictions import ablation_vs_boundary, class_share_per_layer, class_vs_gap_sign  # noqa: E402
from spinsim.analysis.atlas_summary import summarize  # noqa: E402
from spinsim.analysis.figures.atlas import atlas_figures, prediction_figure  # noqa: E402


def _model_atlas():
    a = _atlas(4)
    a.layer[:] = [0, 0, 1, 1]
    a.head_index[:] = [0, 1, 0, 1]
    a.heads = ["L0H0", "L0H1", "L1H0", "L1H1"]
    a.flagged[2, :, :, 0, 0] = True
    summarize(a)
    return a


@pytest.mark.slow
def test_atlas_figures(tmp_path, monkeypatch):
    saved = record_saved_figures(monkeypatch)
    a = _model_atlas()
    paths = atlas_figures(a, tmp_path)
    assert {p.name for p in paths} >= {"atlas_chi.png", "atlas_maps.png", "atlas_tc_length.png"}
    chi = panels(saved["atlas_chi.png"])
    assert [ax.get_title() for ax in chi] == ["L0H0", "L0H1", "L1H0", "L1H1"]
    crosses = [ln for ln in chi[2].get_lines() if ln.get_marker() == "x" and len(ln.get_xdata())]
    assert len(crosses) == 1 and list(crosses[0].get_xdata()) == [a.T[0]]
    assert "coupling class" in [ax.get_title() for ax in panels(saved["atlas_maps.png"])]


def test_prediction_figure(tmp_path, monkeypatch):
    saved = record_saved_figures(monkeypatch)
    a = _model_atlas()
    rng = np.random.default_rng(0)
    inputs = {"ablation_effect": rng.uniform(size=4), "gap_r": rng.uniform(-1, 1, 4)}
    shares, tb = class_share_per_layer(a.layer, a.summary["coupling_class"], n_resamples=99)
    tests = {"a": ablation_vs_boundary(inputs["ablation_effect"], a.summary["model_distance"], 99), "b": tb,
             "c": class_vs_gap_sign(a.summary["coupling_class"], inputs["gap_r"], 99)}
    prediction_figure(a, inputs, tests, shares, tmp_path / "pred")
    titles = [ax.get_title() for ax in panels(saved["pred.png"])]
    assert all("no evidence" in t for t in titles)


def test_tc_vs_length_draws_the_reported_weighted_fit():
    """The T_c(N) line is exp(c) N^p with the (p, c) of the weighted fit the summary reports
    (tc_scaling), not a line re-fitted without the errors: with one uncertain length the two
    differ, and the drawn line's slope and intercept (read back from the plotted points) equal the
    weighted ones, which np.polyfit with weights 1/sigma_ln gives independently."""
    import matplotlib.pyplot as plt

    from spinsim.analysis.atlas_contexts import tc_scaling
    from spinsim.analysis.atlas_store import Atlas
    from spinsim.analysis.figures.atlas import draw_tc_vs_length

    N = np.array([8, 16, 32])
    tc, err = np.array([1.0, 1.5, 1.8]), np.array([0.01, 0.5, 0.01])
    fit = tc_scaling(N, tc, err)
    p_ref, c_ref = np.polyfit(np.log(N), np.log(tc), 1, w=tc / err)
    assert fit["power"] == pytest.approx(p_ref, rel=1e-10) and fit["power_intercept"] == pytest.approx(c_ref, rel=1e-10)
    c_unweighted = np.mean(np.log(tc) - fit["power"] * np.log(N))
    assert abs(c_unweighted - c_ref) > 0.01                   # the old line: another intercept
    a = Atlas(["S0"], [-1], [-1], N, 1, [1.0, 2.0], [0.0], 1)
    a.summary.update(T_c_length=tc[None], T_c_length_err=err[None], tc_power=np.array([fit["power"]]),
                     tc_power_err=np.array([fit["power_err"]]), tc_power_intercept=np.array([fit["power_intercept"]]))
    fig, ax = plt.subplots()
    draw_tc_vs_length(ax, a)
    line = [ln for ln in ax.get_lines() if ln.get_gid() == "fit S0"]
    assert len(line) == 1
    p_line, c_line = np.polyfit(np.log(line[0].get_xdata()), np.log(line[0].get_ydata()), 1)
    plt.close(fig)
    assert p_line == pytest.approx(fit["power"], rel=1e-9) and c_line == pytest.approx(fit["power_intercept"], rel=1e-9)
