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
