"""Figures: PNG and PDF written, non-empty, of the expected pixel size; every file kind plots."""
from __future__ import annotations

from types import SimpleNamespace

import h5py
import matplotlib.image as mpimg
import numpy as np
import pytest

import spinsim as ss
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


def check_png_pdf(paths, min_w=600, min_h=300):
    pngs = [p for p in paths if p.suffix == ".png"]
    pdfs = [p for p in paths if p.suffix == ".pdf"]
    assert pngs and len(pngs) == len(pdfs)
    for p in pngs:
        img = mpimg.imread(p)
        hgt, wid = img.shape[:2]
        assert wid >= min_w and hgt >= min_h, (p, img.shape)
        assert wid <= 4000 and hgt <= 3000, (p, img.shape)
        assert img[..., :3].std() > 0.05                    # not a blank canvas
    for p in pdfs:
        data = p.read_bytes()
        assert data.startswith(b"%PDF") and len(data) > 5000


def test_phase_diagrams_with_boundaries(tmp_path):
    sw = fake_sweep()
    paths = fg.phase_diagrams(sw, tmp_path / "pd")
    check_png_pdf(paths, min_w=1500)
    fig = fg.phase_diagrams(sw)
    labels = fig.legends[0].get_texts()
    text = " ".join(t.get_text() for t in labels)
    for word in ("peak", "mean field", "first-order", "level crossing", "grid edge"):
        assert word in text, text
    assert "off scale" in text                               # T_c^MF = 4 lies right of the grid


def test_partial_sweep_is_drawn(tmp_path):
    sw = fake_sweep(done=[True, True, False, False, True])
    paths = fg.phase_diagrams(sw, tmp_path / "partial")
    check_png_pdf(paths)


def test_observable_curves(tmp_path):
    paths = fg.observable_curves(fake_sweep(), tmp_path / "curves")
    check_png_pdf(paths, min_w=900, min_h=700)
    res = ss.solve(ss.lattice("ising", (3, 3)), np.linspace(1, 4, 7), method="exact")
    check_png_pdf(fg.observable_curves(res, tmp_path / "res"))


def test_head_grid(tmp_path):
    rng = np.random.default_rng(1)
    r = rng.uniform(-0.9, 0.9, (12, 12))
    ax = fg.head_grid(r, label="Pearson r", mark=np.abs(r) > 0.8, mark_label="family-wise p < 0.05")
    texts = [t.get_text() for t in ax.texts]
    assert "L3H5\n" + f"{r[3, 5]:.2f}" in texts and len(texts) == 144
    norm = ax.images[0].norm
    assert norm.vcenter == 0.0 and norm.vmin == -norm.vmax       # diverging, centred
    check_png_pdf(fg.save(ax.figure, tmp_path / "heads"), min_w=700, min_h=450)
    ax = fg.head_grid(rng.uniform(0, 1, (30, 9)) ** 3, label="family-wise p", center=0.05, cmap="RdBu",
                      symmetric=False)
    assert ax.images[0].norm.vmin >= 0
    check_png_pdf(fg.save(ax.figure, tmp_path / "heads30"))
    with pytest.raises(ValueError, match=r"\(n_layers, n_heads\), got \(5,\)"):
        fg.head_grid(np.zeros(5))


def test_plot_files_every_kind(tmp_path):
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
    paths = fg.plot_files([s, r, heads], tmp_path / "figs")
    names = sorted(p.name for p in paths)
    assert "s_phase_diagram.png" in names and "s_curves.pdf" in names
    assert "r_curves.png" in names and "gaps_stats_pearson_r.png" in names
    check_png_pdf(paths, min_w=300, min_h=250)
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        for k, v in root_attrs("gaps").items():
            f.attrs[k] = v
    with pytest.raises(SpinsimFileError, match="nothing to plot"):
        fg.plot_file(empty, tmp_path / "figs")
