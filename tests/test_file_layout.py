"""Every file of `spinsim gaps`, `spinsim ablate` and `spinsim ground` is written through the one
generic writer: `spinsim info` reads it, every dataset carries units and a long name, its dimension
scales resolve to described scales of the same file, and xarray (h5netcdf) opens it. The checker
itself is shown to catch dangling scales and missing units."""
from __future__ import annotations

import h5py
import numpy as np

from _h5layout import check_file, layout_problems
from _tiny_models import PAPER20, gpt2_dir, llama_dir
from spinsim.analysis.ground_study import read_ground_study
from spinsim.cli import main
from spinsim.io import write_axis, write_values


def test_checker_catches_dangling_scales_and_missing_units(tmp_path):
    src, dst = tmp_path / "src.h5", tmp_path / "dst.h5"
    with h5py.File(src, "w") as f:
        g = f.create_group("sweep")
        write_axis(g, "T", np.arange(3.0), "energy", "temperature")
        write_values(g, "chi", np.ones(3), ("T",), "1/energy", "susceptibility")
        f.create_dataset("bare", data=np.zeros(2))
    assert layout_problems(src) == ["/bare: no 'units' attribute", "/bare: no 'long_name' attribute"]
    with h5py.File(dst, "w") as f, h5py.File(src, "r") as s:      # the 0.2.0 demo's /phase copy
        f.copy(s["sweep"]["chi"], "phase_chi")
    assert any("dangling" in p or "not a scale" in p for p in layout_problems(dst)), layout_problems(dst)


def test_gaps_file_layout(tmp_path, capsys):
    out = tmp_path / "gaps.h5"
    assert main(["gaps", "--model", str(gpt2_dir()), "--prompts", str(PAPER20), "--permutations", "50",
                 "--ablation", "zero", "--candidates", "first", "--out", str(out)]) == 0
    check_file(out, capsys)
    with h5py.File(out) as f:
        assert f["gaps/theory"].attrs["units"] == "logit units"
        assert f["ablation/zero/measured"].attrs["units"] == "logit units"
        t = f["stats/classification_table"]
        assert [d.label for d in t.dims] == ["spectrum_class", "r_sign"] and t[()].sum() == 24


def test_ablate_file_layout(tmp_path, capsys):
    out = tmp_path / "a.h5"
    assert main(["ablate", "--model", str(llama_dir()), "--heads", "L0H1,L2H3", "--prompts", str(PAPER20),
                 "--mode", "both", "--candidates", "full", "--out", str(out)]) == 0
    check_file(out, capsys)
    with h5py.File(out) as f:
        assert f["ablation/mean/predicted"].attrs["units"] == "nats (log-probability)"
        assert list(f["ablation"].attrs["ablated_heads"]) == ["L0H1", "L2H3"]
        assert f["prompts/text"].dims[0].keys() == ["prompt"] and f["prompts/text"].shape == (20,)


def test_ground_file_layout_and_reader(tmp_path, capsys):
    out = tmp_path / "g.h5"
    assert main(["ground", "--model", str(llama_dir()), "--prompt", "The capital of France is",
                 "--restarts", "1", "--modes", "2", "--out", str(out)]) == 0
    check_file(out, capsys)
    gs = read_ground_study(out)
    with h5py.File(out) as f:
        for name in ("E0", "n_zero_modes", "spin_wave_gap", "max_torque"):
            np.testing.assert_array_equal(getattr(gs, name), f[f"ground/{name}"][()])
            assert [s.name for d in f[f"ground/{name}"].dims for s in d.values()] == ["/layer", "/head"]
        assert gs.restarts == 1 and gs.n_modes == 2 and gs.meta["input"] == "residual"
        assert f["ground/spin_wave_gap"].attrs["units"] == "energy units / rad^2"


def test_ground_reader_reads_a_0_2_0_demo_group(tmp_path):
    """The demo's /ground of spinsim 0.2.0 (zero_modes, hit_fraction; no Hessian sign data)."""
    from spinsim.io import root_attrs

    path = tmp_path / "old.h5"
    E0, z, hit = np.array([[-1.0, -2.0]]), np.array([[1.0, 0.0]]), np.array([[0.5, 1.0]])
    with h5py.File(path, "w") as f:
        f.attrs.update(root_attrs("gaps"))
        g = f.create_group("ground")
        for name, v in (("E0", E0), ("zero_modes", z), ("hit_fraction", hit)):
            g.create_dataset(name, data=v).attrs["dims"] = ["layer", "head"]
        g.attrs["prompt"] = "a b"
    gs = read_ground_study(path)
    np.testing.assert_array_equal(gs.E0, E0)
    np.testing.assert_array_equal(gs.n_zero_modes, z)
    np.testing.assert_array_equal(gs.best_hit_fraction, hit)
    assert np.isnan(gs.max_torque).all() and gs.max_torque.shape == (1, 2) and gs.meta["prompt"] == "a b"
