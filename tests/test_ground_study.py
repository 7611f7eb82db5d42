"""Per-head ground-state study (issue 7 item 4): analysis.ground_study and `spinsim ground`."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from _tiny_models import SHARED_GPT2, gpt2_dir, llama_dir, loaded
from spinsim.analysis.ground_study import (ARRAYS, compare_ablation, compare_ferro, ground_study, model_builder,
                                           positional_builder, positional_hamiltonian, plot_ground_study,
                                           write_ground_study)
from spinsim.cli import main
from spinsim.models.heads import extract_heads
from spinsim.solvers.ground import local_fields

PROMPT = "The capital of France is Paris"


def test_ground_study_llama_residual_matches_per_head_solve(tmp_path):
    from spinsim.solvers import solve

    lm = loaded("llama")
    hs = extract_heads(lm)
    build = model_builder(lm, PROMPT, "residual", hs)
    gs = ground_study(hs, build, restarts=3, seed=2, n_modes=4)
    assert gs.shape == (hs.n_layers, hs.n_heads)
    for name in ("E0", "n_minima", "best_hit_fraction", "n_zero_modes", "spin_wave_gap"):
        assert np.isfinite(getattr(gs, name)).all(), name
    assert (gs.n_negative_modes == 0).all() and (gs.max_torque < 1e-6).all()
    r = solve(build(1, 2), method="ground", restarts=3, seed=2)     # same seed -> same numbers
    assert gs.E0[1, 2] == r.ground_energy
    # HDF5 layout and figure
    path = tmp_path / "g.h5"
    write_ground_study(path, gs, **compare_ferro(gs, np.full(gs.shape, "ferro")))
    with h5py.File(path) as f:
        for name in ARRAYS:
            d = f[f"ground/{name}"]
            assert d.shape == gs.shape and d.dims[0][0].name == "/layer" and d.dims[1][0].name == "/head"
            np.testing.assert_array_equal(d[()], getattr(gs, name))
        assert f["ground"].attrs["restarts"] == 3 and f["ground"].attrs["n_ferro"] == gs.E0.size
    plot_ground_study(gs, tmp_path / "g", formats=("png",))
    assert (tmp_path / "g.png").stat().st_size > 0


def test_positional_hamiltonian_gpt2_is_stationary_and_biases_enter_as_fields():
    lm = loaded("gpt2")
    hs = extract_heads(lm)
    H = positional_hamiltonian(lm.weights, hs.head(0, 1), 6)
    assert H.n_sites == 6 and H.n_comp == hs.d_model
    hw = hs.head(0, 1)
    X = H.state
    # E = -sum_{i>j} (q_i . k_j) scale + const, with q = x W_Q + b_Q, k = x W_K + b_K
    q, k = X @ hw.W_Q.astype(float) + hw.b_Q, X @ hw.W_K.astype(float) + hw.b_K
    scores = hw.scale * np.tril(q @ k.T, -1).sum()
    assert H.energy(X) + H.meta["energy_constant"] == pytest.approx(-scores, rel=1e-9)
    gs = ground_study(hs, positional_builder(lm.weights, hs, 6), restarts=2, seed=0, n_modes=4)
    assert np.isfinite(gs.E0).all() and (gs.max_torque < 1e-6).all()


def test_compare_ablation_spearman_and_shape_check():
    lm = loaded("gpt2")
    hs = extract_heads(lm)
    gs = ground_study(hs, positional_builder(lm, hs, 4), restarts=1, seed=0, n_modes=3)
    c = compare_ablation(gs, np.abs(gs.spin_wave_gap) * 2 + 1)       # monotone -> rho = 1
    assert c["ablation_spearman_rho"] == pytest.approx(1.0) and c["ablation_n_heads"] == gs.E0.size
    with pytest.raises(ValueError, match="shape"):
        compare_ablation(gs, np.zeros((1, 1)))


def test_cli_ground_with_ablation_file_and_errors(tmp_path, capsys):
    lm = loaded("gpt2")
    hs = extract_heads(lm)
    abl = tmp_path / "abl.h5"
    with h5py.File(abl, "w") as f:
        f["ablation/zero/measured"] = np.random.default_rng(0).normal(size=(3, hs.n_layers, hs.n_heads))
    out, fig = tmp_path / "g.h5", tmp_path / "g.png"
    model = str(gpt2_dir())
    assert main(["ground", "--model", model, "--prompt", PROMPT, "--restarts", "2", "--modes", "3",
                 "--ablation", str(abl), "--out", str(out), "--figure", str(fig)]) == 0
    text = capsys.readouterr().out
    assert "Goldstone counts" in text and "Spearman rho" in text
    with h5py.File(out) as f:
        assert np.isfinite(f["ground"].attrs["ablation_spearman_rho"])
        assert f["ground"].attrs["input"] == "residual"
    assert fig.stat().st_size > 0
    assert main(["ground", "--model", model, "--input", "pos", "--positions", "5", "--restarts", "1",
                 "--out", str(tmp_path / "p.h5")]) == 0
    # usage errors: exit 2, one line
    assert main(["ground", "--model", model, "--out", str(tmp_path / "x.h5")]) == 2          # no prompt
    assert main(["ground", "--model", model, "--prompt", "a", "--out", str(out)]) == 2      # exists
    assert main(["ground", "--model", model, "--prompt", "a", "--restarts", "0", "--out", str(tmp_path / "y.h5")]) == 2
    assert main(["ground", "--model", str(llama_dir()), "--input", "pos", "--out", str(tmp_path / "z.h5")]) == 2
    err = capsys.readouterr().err
    assert "needs --prompt" in err and "exists" in err and "GPT-2" in err


@pytest.mark.slow
def test_real_gpt2_small_positional_all_heads():
    if not (SHARED_GPT2 / "config.json").is_file():
        pytest.skip(f"real GPT-2 small weights not present at {SHARED_GPT2} (CI has ../shared beside the repo)")
    from spinsim.models.loading import load_weights

    w = load_weights(SHARED_GPT2)
    hs = extract_heads(w)
    gs = ground_study(hs, positional_builder(w, hs, 32), restarts=4, seed=0, n_modes=6)
    assert gs.shape == (12, 12)
    assert np.isfinite(gs.E0).all()
    assert (gs.max_torque < 1e-6).all()                     # every ground state is stationary
    H = positional_hamiltonian(w, hs.head(5, 1), 32)
    assert np.isfinite(local_fields(H, H.state)).all()
