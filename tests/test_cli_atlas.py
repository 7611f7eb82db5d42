"""``spinsim atlas`` end to end on a tiny random Llama (rotary heads, exact per-site coupling,
reduced spin space): the file over (head, length, sample, h, T), each row the head's own row,
the per-head summary; usage errors before the model loads."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from spinsim.cli import main

sys.path.insert(0, str(Path(__file__).parent))

PROMPT = "A dog says woof. A cat says"


@pytest.mark.slow
def test_atlas_of_two_tiny_llama_heads(tmp_path, capsys):
    from _tiny_models import llama_dir

    from spinsim.analysis.atlas_adapt import point_seed
    from spinsim.analysis.atlas_store import read_atlas
    from spinsim.models.hamiltonians import head_hamiltonian
    from spinsim.phase.task import compute_row
    from spinsim.directions import resolve_direction

    out = tmp_path / "atlas.h5"
    model = str(llama_dir())
    rc = main(["atlas", "--model", model, "--prompt", PROMPT, "--heads", "L0H1,L2H3", "--T", "0.5:3:3",
               "--field", "0:1:2", "--sweeps", "20", "--max-sweeps", "40", "--chains", "1", "--quiet",
               "--device", "cpu", "--out", str(out), "--figures", str(tmp_path / "figs"), "--predictions",
               "--permutations", "99"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert (tmp_path / "figs" / "atlas_chi.png").exists() and (tmp_path / "figs" / "atlas_maps.png").exists()
    assert (tmp_path / "figs" / "atlas_predictions.png").exists()
    assert "ablation_vs_boundary:" in err and "class_vs_gap_sign:" in err
    assert "2 heads x 2 fields x 3 temperatures" in err
    a = read_atlas(out)
    assert a.complete and a.heads == ["L0H1", "L2H3"] and list(a.layer) == [0, 2] and list(a.head_index) == [1, 3]
    assert a.attrs["prompt"] == PROMPT and a.attrs["rotary"] == "auto"
    H = head_hamiltonian(model, "L2H3", PROMPT)
    assert a.lengths.tolist() == [H.n_sites] and a.n_comp == H.n_comp
    key = (1, 0, 0, 1)       # h = 1: 20 sweeps (< 100) flag every point, each solved again at the cap, 40
    np.testing.assert_array_equal(a.point_sweeps[key], [40, 40, 40])
    ref = compute_row(H, a.T, 1.0, resolve_direction(H, "prompt")[0], point_seed(0, a.row_index(*key), 1), 0,
                      dict(sweeps=40, discard=100, n_chains=1, algorithm="heatbath", backend="cpu"))
    np.testing.assert_array_equal(a.values["energy"][key], ref["energy"])
    for name in ("T_c", "T_mf", "kind", "coupling_class", "boundary_T", "model_side"):
        assert name in a.summary and len(a.summary[name]) == 2
    assert set(a.summary["kind"]) <= {"uniform", "staggered", "pinned", "disordered", "unresolved"}
    assert "pinned if q_u >= 0.5" in a.attrs["summary_kind_rule"]
    import json
    pred = json.loads(a.attrs["predictions"])
    assert set(pred) == {"a", "a_uncensored", "b", "c"} and all("evidence" in t["verdict"] for t in pred.values())
    assert a.summary["gap_r"].shape == (2,) and np.all(np.isfinite(a.summary["ablation_effect"]))
    # a rerun resumes a complete file: nothing recomputed, same numbers
    assert main(["atlas", "--model", model, "--prompt", PROMPT, "--heads", "L0H1,L2H3", "--T", "0.5:3:3",
                 "--field", "0:1:2", "--sweeps", "20", "--max-sweeps", "40", "--chains", "1", "--quiet",
                 "--device", "cpu", "--out", str(out)]) == 0
    np.testing.assert_array_equal(read_atlas(out).values["energy"], a.values["energy"])
    # other parameters: refused, exit 2
    assert main(["atlas", "--model", model, "--prompt", PROMPT, "--heads", "L0H1,L2H3", "--T", "0.5:3:4",
                 "--field", "0:1:2", "--sweeps", "20", "--max-sweeps", "40", "--chains", "1", "--quiet",
                 "--device", "cpu", "--out", str(out)]) == 2
    assert "'T' differs" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--heads", "L9H0"], "L9H0"),
    (["--heads", "L0H1", "--sweeps", "100", "--max-sweeps", "50"], "--max-sweeps 50 is below --sweeps 100"),
    (["--heads", "L0H1", "--field", "0.1:1:3"], "--field must include 0 (T_c, the ordering kind and the model's "
                                                "point are read at h = 0); got 0.1, 0.55, 1"),
])
def test_usage_errors_exit_2(tmp_path, capsys, extra, message):
    from _tiny_models import llama_dir

    rc = main(["atlas", "--model", str(llama_dir()), "--prompt", PROMPT, "--T", "1:2:2", "--field", "0",
               "--out", str(tmp_path / "a.h5")] + extra)
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "a.h5").exists()
