"""Per-head ground-state study (issue 7 item 4): analysis.ground_study and `spinsim ground`."""
from __future__ import annotations

from types import SimpleNamespace

import h5py
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from _tiny_models import SHARED_GPT2, gpt2_dir, llama_dir, loaded
from spinsim.analysis.ground_study import (ARRAYS, compare_ablation, compare_ferro, ground_study, model_builder,
                                           positional_builder, positional_hamiltonian, plot_ground_study,
                                           write_ground_study)
from spinsim.cli import main
from spinsim.models.heads import extract_heads

PROMPT = "The capital of France is Paris"


def check_ground_figure(fig, gs) -> None:
    """The ground-study figure by content: two layer x head grids holding log10 |spin-wave gap|
    (+1e-12) and the zero-mode counts, labelled axes and titles."""
    ax_gap, ax_zero = fig.axes[:2]
    n_layers, n_heads = gs.shape
    for ax in (ax_gap, ax_zero):
        assert ax.get_xlabel() == "head" and ax.get_ylabel() == "layer"
        assert [t.get_text() for t in ax.get_xticklabels()] == [f"H{j}" for j in range(n_heads)]
        assert [t.get_text() for t in ax.get_yticklabels()] == [f"L{i}" for i in range(n_layers)]
    np.testing.assert_allclose(np.ma.filled(ax_gap.images[0].get_array(), np.nan),
                               np.log10(np.abs(gs.spin_wave_gap) + 1e-12), rtol=1e-12)
    np.testing.assert_array_equal(np.ma.filled(ax_zero.images[0].get_array(), np.nan), gs.n_zero_modes)
    assert "log10" in ax_gap.get_title() and "Goldstone" in ax_zero.get_title()


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
    # head (1, 2): E0 is the energy of the returned ground state by explicit sums (rel 1e-9), that
    # state is stationary (every spin along its explicit local field, torque < 1e-6 |phi|) and E0
    # obeys the bound E >= -sum_{i!=j} |W_ij| m_i m_j ||M||_2 - sum_i m_i |h_i| (rel 1e-12)
    H = build(1, 2)
    assert H.provenance["rotary"] == "exact"
    S = solve(H, method="ground", restarts=3, seed=2).ground_states[0]
    # a rotary head: the exact per-site coupling, M_ij = A_i B_j^T for query i, key j (dense per pair here)
    W = H.W_dense
    Mij = np.einsum("iar,jbr->ijab", H.M.A, H.M.B)
    assert gs.E0[1, 2] == pytest.approx(-np.einsum("ij,ia,ijab,jb->", W, S, Mij, S) - np.sum(H.h * S), rel=1e-9)
    phi = np.einsum("ij,ijab,jb->ia", W, Mij, S) + np.einsum("ji,jiba,jb->ia", W, Mij, S) + H.h
    sigma = S / np.linalg.norm(S, axis=1, keepdims=True)
    along = np.sum(phi * sigma, axis=1)
    free = ~H.frozen
    assert np.all(along[free] > 0)
    torque = np.linalg.norm(phi - along[:, None] * sigma, axis=1)
    assert np.all(torque[free] <= 1e-6 * np.linalg.norm(phi[free], axis=1))
    m = H.lengths
    norms = np.linalg.norm(Mij, 2, axis=(2, 3))                         # ||M_ij||_2 per pair
    bound = -(np.abs(W) * np.outer(m, m) * norms).sum() - m @ np.linalg.norm(H.h, axis=1)
    assert gs.E0[1, 2] >= bound * (1 + 1e-12)
    # HDF5 layout and figure
    path = tmp_path / "g.h5"
    write_ground_study(path, gs, **compare_ferro(gs, np.full(gs.shape, "ferro")))
    with h5py.File(path) as f:
        for name in ARRAYS:
            d = f[f"ground/{name}"]
            assert d.shape == gs.shape and d.dims[0][0].name == "/layer" and d.dims[1][0].name == "/head"
            np.testing.assert_array_equal(d[()], getattr(gs, name))
        assert f["ground"].attrs["restarts"] == 3 and f["ground"].attrs["n_ferro"] == gs.E0.size
    fig = plot_ground_study(gs, tmp_path / "g", formats=("png",))
    check_ground_figure(fig, gs)
    img = plt.imread(tmp_path / "g.png")                    # the saved file is a picture, not blank
    assert img.ndim == 3 and min(img.shape[:2]) > 100 and len(np.unique(img.reshape(-1, img.shape[2]), axis=0)) > 10


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
    assert H.energy(X) + H.provenance["energy_constant"] == pytest.approx(-scores, rel=1e-9)
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


def test_cli_ground_with_ablation_file_and_errors(tmp_path, capsys, monkeypatch):
    import spinsim.analysis.ground_study as gs_mod

    figures = []
    plot = gs_mod.plot_ground_study

    def keep_figure(*args, **kwargs):
        figures.append(plot(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(gs_mod, "plot_ground_study", keep_figure)
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
        written = SimpleNamespace(shape=(hs.n_layers, hs.n_heads), spin_wave_gap=f["ground/spin_wave_gap"][()],
                                  n_zero_modes=f["ground/n_zero_modes"][()])
    assert len(figures) == 1 and fig.is_file()
    check_ground_figure(figures[0], written)          # the figure shows what the file holds
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
    assert np.isfinite(H.local_fields(H.state)).all()


def test_cli_ground_bad_ablation_file_fails_before_the_study(tmp_path, capsys, monkeypatch):
    """A non-HDF5, a file without /ablation/zero, or another model's file: exit 2 naming the file,
    before any head is solved."""
    import spinsim.analysis.ground_study as gs_mod

    monkeypatch.setattr(gs_mod, "ground_study", lambda *a, **k: pytest.fail("the study ran on a bad --ablation"))
    model = str(gpt2_dir())
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["ablation/zero/measured"] = np.zeros((2, 3, 2))
    empty = tmp_path / "empty.h5"
    h5py.File(empty, "w").close()
    text = tmp_path / "not.h5"
    text.write_text("not hdf5")
    base = ["ground", "--model", model, "--prompt", PROMPT, "--restarts", "1", "--out", str(tmp_path / "g.h5")]
    assert main(base + ["--ablation", str(text)]) == 2
    assert f"--ablation '{text}' is not a readable HDF5 file" in capsys.readouterr().err
    assert main(base + ["--ablation", str(empty)]) == 2
    assert "no /ablation/zero/measured" in capsys.readouterr().err
    assert main(base + ["--ablation", str(other)]) == 2
    assert "holds 3 layers x 2 heads, the model 4 x 6: not the same model" in capsys.readouterr().err
