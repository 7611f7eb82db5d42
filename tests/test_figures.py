"""Figures, checked by content (axes labels, titles, legends, the data drawn and its ranges) on
the matplotlib objects; PNG and PDF written for every figure; every file kind plots."""
from __future__ import annotations

from types import SimpleNamespace

import h5py
import numpy as np
import pytest

import spinsim as ss
from _figures import panels, record_saved_figures
from spinsim.analysis import figures as fg
from spinsim.io import SpinsimFileError, root_attrs


def fake_sweep(done=None) -> SimpleNamespace:
    T = np.linspace(1.5, 3.5, 9)
    h = np.linspace(-0.3, 0.3, 5)
    Tp = 2.4 + 2.0 * np.abs(h)
    chi = np.array([4.0 / (1 + 10 * abs(x)) / (1.0 + ((T - t) / 0.3) ** 2) for x, t in zip(h, Tp)])
    m = np.array([1.0 / (1.0 + np.exp((T - t) / 0.2)) for t in Tp])
    data = {"susceptibility": chi, "susceptibility_err": 0.05 * chi, "magnetization": m,
            "magnetization_err": 0.01 + 0 * m, "specific_heat": chi / 3, "specific_heat_err": 0.02 * chi,
            "energy": -2 * m, "energy_err": 0.01 + 0 * m, "projection": np.sign(h)[:, None] * m,
            "projection_err": 0.01 + 0 * m, "projection_susceptibility": chi, "binder": 0.6 * m,
            "binder_err": 0.01 + 0 * m}
    done = np.ones(h.size, bool) if done is None else np.asarray(done)
    for v in data.values():
        v[~done] = np.nan
    bnd = {
        "chi_peak": {"h": h, "T": Tp, "T_err": 0.05 + 0 * h, "at_edge": Tp > 2.9, "method": "chi peak"},
        "mean_field": {"h": h, "T": np.where(h == 0, 4.0, np.nan), "method": "mean field"},
        "coexistence": {"T": np.array([1.5, 2.4]), "h": np.zeros(2), "method": "coexistence"},
        "level_crossing": {"T": T, "h": 0.15 + 0 * T, "candidates": [" Paris", " Rome"], "method": "lc"},
    }
    return SimpleNamespace(T=T, h=h, data=data, done=done, boundaries=bnd, fraction_done=float(done.mean()),
                           attrs={"hamiltonian_name": "fake_square_8x8", "method": "mc"})


def check_saved(paths):
    """Every figure written as a PNG and a PDF of the same stem."""
    pngs = sorted(p.with_suffix("") for p in paths if p.suffix == ".png")
    assert pngs and pngs == sorted(p.with_suffix("") for p in paths if p.suffix == ".pdf")
    for p in paths:
        assert p.is_file(), p
        assert p.read_bytes()[:4] == (b"\x89PNG" if p.suffix == ".png" else b"%PDF")


def check_heat_map(ax, sw, observable):
    """A phase-diagram panel: axis labels, extent = the grid's cell edges, colours = the data."""
    assert "temperature $T$" in ax.get_xlabel() and "added field $h$" in ax.get_ylabel()
    assert ax.get_title() == fg.LABELS[observable][0]
    T, h = sw.T, sw.h
    assert ax.get_xlim() == pytest.approx((T[0] - (T[1] - T[0]) / 2, T[-1] + (T[-1] - T[-2]) / 2))
    assert ax.get_ylim() == pytest.approx((h[0] - (h[1] - h[0]) / 2, h[-1] + (h[-1] - h[-2]) / 2))
    mesh = ax.collections[0]
    Z = np.ma.masked_invalid(sw.data[observable])
    np.testing.assert_allclose(np.ma.filled(mesh.get_array().reshape(Z.shape), np.nan),
                               np.ma.filled(Z, np.nan), rtol=1e-12)
    assert mesh.norm.vmin == pytest.approx(Z.min()) and mesh.norm.vmax == pytest.approx(Z.max())


def test_phase_diagrams_with_boundaries(tmp_path):
    sw = fake_sweep()
    check_saved(fg.phase_diagrams(sw, tmp_path / "pd"))
    fig = fg.phase_diagrams(sw)
    obs = ("susceptibility", "magnetization", "specific_heat")
    axes = panels(fig)
    assert len(axes) == 3
    for ax, o in zip(axes, obs):
        check_heat_map(ax, sw, o)
    cbar_labels = [ax.get_ylabel() for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert cbar_labels == [fg.LABELS[o][0] for o in obs]
    assert fig._suptitle.get_text() == "fake_square_8x8, mc"
    # the chi-peak line is drawn at the given points (those not at the grid edge)
    chi = sw.boundaries["chi_peak"]
    inside = ~chi["at_edge"]
    peak = [c for c in axes[0].containers if c.get_label().startswith(r"$\chi$ peak")][0].lines[0]
    np.testing.assert_allclose(peak.get_xdata(), chi["T"][inside])
    np.testing.assert_allclose(peak.get_ydata(), chi["h"][inside])
    labels = fig.legends[0].get_texts()
    text = " ".join(t.get_text() for t in labels)
    for word in ("peak", "mean field", "first-order", "level crossing", "grid edge"):
        assert word in text, text
    assert "off scale" in text                               # T_c^MF = 4 lies right of the grid


def test_partial_sweep_is_drawn(tmp_path):
    sw = fake_sweep(done=[True, True, False, False, True])
    check_saved(fg.phase_diagrams(sw, tmp_path / "partial"))
    fig = fg.phase_diagrams(sw)
    assert fig._suptitle.get_text().endswith("[60% of rows done]")
    for ax, o in zip(panels(fig), ("susceptibility", "magnetization", "specific_heat")):
        check_heat_map(ax, sw, o)                           # rows not done: masked cells
        assert int(np.ma.count_masked(ax.collections[0].get_array())) == 2 * sw.T.size
        hatched = [c for c in ax.collections[1:] if c.get_hatch() == "//"]
        assert len(hatched) == 2


def test_observable_curves(tmp_path):
    sw = fake_sweep()
    check_saved(fg.observable_curves(sw, tmp_path / "curves"))
    fig = fg.observable_curves(sw)
    obs = ("energy", "specific_heat", "magnetization", "susceptibility")
    axes = panels(fig)
    assert [ax.get_ylabel() for ax in axes] == [fg.LABELS[o][0] for o in obs]
    for ax, o in zip(axes, obs):
        assert "temperature $T$" in ax.get_xlabel()
        curves = [c for c in ax.containers if c.get_label().startswith("h = ")]
        assert [c.get_label() for c in curves] == [f"h = {x:.3g}" for x in sw.h]
        for c, row in zip(curves, sw.data[o]):
            ln = c.lines[0]
            np.testing.assert_allclose(ln.get_xdata(), sw.T)
            np.testing.assert_allclose(ln.get_ydata(), row)
    res = ss.solve(ss.lattice("ising", (3, 3)), np.linspace(1, 4, 7), method="exact")
    check_saved(fg.observable_curves(res, tmp_path / "res"))
    fig = fg.observable_curves(res)
    ax = panels(fig)[0]
    assert ax.get_ylabel() == fg.LABELS["energy"][0] and ax.containers[0].get_label() == f"{res.method}/{res.backend}"
    np.testing.assert_allclose(ax.containers[0].lines[0].get_ydata(), res.energy)
    assert ax.get_ylim()[0] <= res.energy.min() and ax.get_ylim()[1] >= res.energy.max()


def test_head_grid(tmp_path):
    rng = np.random.default_rng(1)
    r = rng.uniform(-0.9, 0.9, (12, 12))
    ax = fg.head_grid(r, label="Pearson r", mark=np.abs(r) > 0.8, mark_label="family-wise p < 0.05")
    texts = [t.get_text() for t in ax.texts]
    assert "L3H5\n" + f"{r[3, 5]:.2f}" in texts and len(texts) == 144
    norm = ax.images[0].norm
    assert norm.vcenter == 0.0 and norm.vmin == -norm.vmax       # diverging, centred
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"H{j}" for j in range(12)]
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"L{i}" for i in range(12)]
    assert ax.images[0].colorbar.ax.get_ylabel() == "Pearson r"
    np.testing.assert_array_equal(ax.images[0].get_array(), r)
    assert len(ax.patches) == 2 * int(np.sum(np.abs(r) > 0.8))       # outlined survivors
    check_saved(fg.save(ax.figure, tmp_path / "heads"))
    ax = fg.head_grid(rng.uniform(0, 1, (30, 9)) ** 3, label="family-wise p", center=0.05, cmap="RdBu",
                      symmetric=False)
    assert ax.images[0].norm.vmin >= 0 and ax.images[0].norm.vcenter == 0.05
    assert ax.get_yticklabels()[-1].get_text() == "L29"
    check_saved(fg.save(ax.figure, tmp_path / "heads30"))
    with pytest.raises(ValueError, match=r"\(n_layers, n_heads\), got \(5,\)"):
        fg.head_grid(np.zeros(5))


def test_plot_files_every_kind(tmp_path, monkeypatch):
    from spinsim.phase import sweep

    s = tmp_path / "s.h5"
    sweep(ss.lattice("ising", (4, 4)), [1.5, 2.5, 3.5], [0.0, 0.3], out=s, sweeps=200, progress=False,
          estimate=False)
    r = tmp_path / "r.h5"
    ss.solve(ss.lattice("ising", (3, 3)), [1.0, 2.0], method="exact").to_hdf5(r)
    heads = tmp_path / "gaps.h5"
    with h5py.File(heads, "w") as f:
        for k, v in root_attrs("gaps").items():
            f.attrs[k] = v
        d = f.create_dataset("stats/pearson_r", data=np.random.default_rng(0).uniform(-1, 1, (4, 3)))
        d.attrs["dims"] = np.array(["layer", "head"], dtype=h5py.string_dtype())
    saved = record_saved_figures(monkeypatch)
    paths = fg.plot_files([s, r, heads], tmp_path / "figs")
    check_saved(paths)
    assert sorted(p.name for p in paths) == sorted(saved)
    names = set(saved)
    assert {"s_phase_diagram.png", "s_curves.pdf", "r_curves.png", "gaps_stats_pearson_r.png"} <= names
    pd = panels(saved["s_phase_diagram.png"])
    assert [ax.get_title() for ax in pd] == [fg.LABELS[o][0] for o in ("susceptibility", "magnetization",
                                                                       "specific_heat")]
    assert pd[0].get_xlim()[0] < 1.5 and pd[0].get_xlim()[1] > 3.5        # the sweep's T grid
    grid = panels(saved["gaps_stats_pearson_r.png"])[0]
    assert grid.get_title() == "gaps: stats/pearson_r" and grid.images[0].get_array().shape == (4, 3)
    curves = panels(saved["r_curves.png"])
    np.testing.assert_allclose(curves[0].containers[0].lines[0].get_xdata(), [1.0, 2.0])
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        for k, v in root_attrs("gaps").items():
            f.attrs[k] = v
    with pytest.raises(SpinsimFileError, match="nothing to plot"):
        fg.plot_file(empty, tmp_path / "figs")


def test_an_unconverged_point_is_marked_and_does_not_set_the_colour_scale():
    """A point whose split R-hat exceeds 1.01 (C = 7324 among values ~280, as in a demo run) is
    drawn with a cross and left out of the colour limits, which the converged points set."""
    T, h = np.array([0.5, 1.0, 2.0]), np.array([0.0, 1.0])
    C = np.array([[280.0, 290.0, 260.0], [270.0, 7324.0, 250.0]])
    rhat = np.array([[1.0, 1.0, 1.0], [1.0, 1.74, 1.0]])
    sw = SimpleNamespace(T=T, h=h, data={"specific_heat": C, "rhat": rhat}, done=np.ones(2, bool), boundaries={},
                         row_warnings=[[], ["T=1: split R-hat = 1.74 > 1.01"]])
    ax = fg.phase_diagram(sw, "specific_heat")
    mesh = ax.collections[0]
    assert (mesh.norm.vmin, mesh.norm.vmax) == (250.0, 290.0)
    crosses = [ln for ln in ax.lines if ln.get_marker() == "x"]
    assert len(crosses) == 1
    np.testing.assert_array_equal(crosses[0].get_xdata(), [1.0])
    np.testing.assert_array_equal(crosses[0].get_ydata(), [1.0])
    assert "split R-hat > 1.01" in crosses[0].get_label()
