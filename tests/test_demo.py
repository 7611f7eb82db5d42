"""End to end: `spinsim demo` on a tiny random Llama (reduced settings); its files open and its
gaps equal a fresh `spinsim gaps` run with the same seed."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from _tiny_models import llama_dir
from spinsim.cli import main


@pytest.mark.slow
def test_demo_end_to_end_matches_a_fresh_gaps_run(tmp_path):
    model = str(llama_dir())
    out = tmp_path / "demo"
    assert main(["demo", "--model", model, "--quick", "--permutations", "300", "--sweeps", "40",
                 "--out", str(out), "--seed", "4", "--device", "cpu"]) == 0
    for name in ("study.h5", "phase.h5", "report.md", "report.html", "heads_r.png", "validate.png",
                 "ground.png", "phase_phase_diagram.png"):
        assert (out / name).stat().st_size > 0, name
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "family-wise" in html
    g = tmp_path / "gaps.h5"
    assert main(["gaps", "--model", model, "--permutations", "300", "--seed", "4", "--out", str(g)]) == 0
    with h5py.File(out / "study.h5") as a, h5py.File(g) as b:
        for mode in ("corrected", "paper"):
            for ds in ("gaps/theory", "gaps/actual", "stats/pearson_r", "stats/fwer_p", "stats/bh_q"):
                np.testing.assert_array_equal(a[f"{mode}/{ds}"][()], b[f"{mode}/{ds}"][()], err_msg=f"{mode}/{ds}")
        assert a["phase/sweep/done"][()].all()
        v = a["validate"]
        assert np.all(np.abs(v["z"][()]) < 5)
        np.testing.assert_allclose(v["exact"][()], v["analytic"][()], rtol=1e-9, atol=1e-9)
        assert a["ground/E0"].shape == (3, 4) and np.all(np.isfinite(a["ground/E0"][()]))
        assert "spinsim_version" in a.attrs and "timings_s" in a.attrs
