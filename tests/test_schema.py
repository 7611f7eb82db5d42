"""The observable schema, the one Result (over T or h x T), the generic HDF5 writer, and files
written by spinsim 0.1.0 (tests/data/format_0_1: an exact 3x3 Ising sweep with its boundaries and
an exact result, written by commit 4ea4b84)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

import spinsim as ss
from spinsim import schema
from spinsim.io import FILE_FORMAT, FileFormatError, atomic_h5, root_attrs
from spinsim.observables import thermodynamics
from spinsim.phase import read_sweep
from spinsim.result import Boundary, Result

DATA_01 = Path(__file__).parent / "data" / "format_0_1"


# ----------------------------------------------------------------------------- schema
def test_schema_names_and_labels():
    names = schema.names()
    assert len(names) == len(set(names)) == len(schema.OBSERVABLES)
    assert schema.names(has_error=True) == ["energy", "specific_heat", "magnetization", "susceptibility",
                                            "binder", "projection", "projection_susceptibility"]
    assert schema.names(errors=True)[:2] == ["energy", "energy_err"]
    assert schema.label("susceptibility") == r"susceptibility $\chi$"
    assert schema.label("binder_err") == r"standard error of Binder cumulant $U$"
    assert schema.observable("energy_err").name == "energy"
    with pytest.raises(KeyError, match=r"unknown observable 'chi'; allowed: energy, .*tau_int"):
        schema.observable("chi")


def test_mc_estimates_are_the_schema_observables():
    """thermodynamics() returns every schema observable with an error, its error, tau_int and the
    split R-hat; the energy is the block mean per site (here a constant series: exact, zero
    error, R-hat 1)."""
    E = np.full((2, 64), -6.0)
    m = np.full((2, 64), 0.5)
    th = thermodynamics(E, m, m, T=2.0, n_free=3, n_comp=1)
    assert list(th.estimates) == schema.names(has_error=True, errors=True) + ["tau_int", "rhat"]
    assert th.estimates["rhat"] == 1.0
    assert th.estimates["energy"] == -2.0 and th.estimates["energy_err"] == 0.0
    assert th.estimates["susceptibility"] == 0.0 and th.tau_int == 0.5


# ----------------------------------------------------------------------------- Result
def test_result_reads_one_way_over_T_and_over_h_x_T():
    r = Result([1.0, 2.0], "exact", energy=[-1.0, -0.5], energy_err=[0.0, 0.0])
    assert r.dims == ("T",) and r.complete and r.array_names() == ["energy"]
    np.testing.assert_array_equal(r.energy, r["energy"])
    assert r.binder is None and r.tau_int is None                  # not provided: None
    with pytest.raises(KeyError, match="'binder' not in this result; present: energy, energy_err"):
        r["binder"]
    with pytest.raises(TypeError, match="unknown observable 'chi'"):
        Result([1.0], chi=[1.0])
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        r.nonsense
    s = Result([1.0, 2.0, 3.0], "mc", h=[0.0, 0.5], done=[True, False], energy=np.zeros((2, 3)))
    assert s.dims == ("h", "T") and s.grid_shape == (2, 3) and not s.complete and s.fraction_done == 0.5
    s.energy = np.ones((2, 3))                                       # assignment goes to the values
    assert s["energy"].sum() == 6.0


def test_the_writer_labels_every_observable_from_the_schema(tmp_path):
    H = ss.lattice("ising", (3, 3))
    res = ss.solve(H, [1.0, 2.0], method="exact", direction=np.ones(1))
    p = res.to_hdf5(tmp_path / "r.h5")
    with h5py.File(p) as f:
        assert f.attrs["spinsim_format"] == FILE_FORMAT
        g = f["result"]
        assert g["T"].is_scale and g["T"].attrs["units"] == "energy (k_B = 1)"
        for name in res.array_names():
            o = schema.observable(name)
            d = g[name]
            assert (d.attrs["units"], d.attrs["long_name"], d.attrs["symbol"]) == (o.units, o.long_name, o.symbol)
            assert d.dims[0][0] == g["T"] and list(d.attrs["dims"]) == ["T"]
            if o.has_error:
                assert g[name + "_err"].attrs["error_of"] == name
                assert g[name + "_err"].attrs["units"] == o.units
        assert g["magnetization_vector"].dims[1][0] == g["component"]
    back = Result.from_hdf5(p)
    assert sorted(back.values) == sorted(res.values)
    for k, v in res.values.items():
        np.testing.assert_array_equal(back[k], v)
    assert back.gap == res.gap == 8.0 and back.ground_degeneracy == 2


def test_boundary_round_trip_and_checks(tmp_path):
    b = Boundary(param="h", h=[0.0, 0.5], T=[2.2, np.nan], T_err=[0.1, np.nan], at_edge=[False, True],
                 method="chi peak")
    with h5py.File(tmp_path / "b.h5", "w") as f:
        b.write_group(f.create_group("b"))
    with h5py.File(tmp_path / "b.h5") as f:
        assert f["b/h"].is_scale and f["b/T"].dims[0][0] == f["b/h"]
        back = Boundary.read_group(f["b"])
    np.testing.assert_array_equal(back.T, b.T)
    assert back.at_edge.tolist() == [False, True] and back.method == "chi peak" and back.sizes is None
    assert back["T_err"] is back.T_err and back.get("sizes", "none") == "none" and "chi_max" not in back
    with pytest.raises(ValueError, match="param must be 'T' or 'h', got 'x'"):
        Boundary(param="x", T=[1.0], h=[0.0])
    with pytest.raises(ValueError, match=r"shapes \(2,\) and \(1,\)"):
        Boundary(param="T", T=[1.0, 2.0], h=[0.0])


# ----------------------------------------------------------------------------- 0.1 files
def test_a_0_1_sweep_file_still_reads():
    """The 0.1.0 sweep (exact, 3x3 Ising, T = 1, 2, 3, h = 0, 0.5 along the order) reads as a
    SweepResult equal to fresh exact solves (rtol 1e-12), with its boundary lines."""
    sw = read_sweep(DATA_01 / "sweep.h5")
    assert sw.attrs["spinsim_version"] == "0.1.0" and sw.complete and sw.dims == ("h", "T")
    assert sw.method == "exact" and sw.n_free == 9
    H = ss.lattice("ising", (3, 3))
    for k, hv in enumerate(sw.h):
        ref = ss.solve(ss.replace(H, h=np.full((9, 1), hv)), sw.T, method="exact", direction=np.ones(1))
        for name in ("energy", "specific_heat", "magnetization", "susceptibility", "binder", "projection"):
            np.testing.assert_allclose(sw[name][k], getattr(ref, name), rtol=1e-12, atol=1e-15, err_msg=name)
    assert sorted(sw.boundaries) == ["chi_peak", "level_crossing", "mean_field"]
    chi = sw.boundaries["chi_peak"]
    assert isinstance(chi, Boundary) and chi.param == "h" and chi.at_edge.dtype == bool
    assert sw.boundaries["mean_field"].T[0] == pytest.approx(4.0)
    lc = sw.boundaries["level_crossing"]
    assert lc.candidates == ["a", "b"] and np.allclose(lc.h, -0.25)


def test_a_0_1_result_file_still_reads():
    r = Result.from_hdf5(DATA_01 / "result.h5")
    ref = ss.solve(ss.lattice("ising", (3, 3)), [1.0, 2.0], method="exact")
    assert r.method == "exact" and r.ground_degeneracy == 2
    for name in ref.array_names():
        np.testing.assert_allclose(getattr(r, name), getattr(ref, name), rtol=1e-12, err_msg=name)


def test_a_newer_file_format_is_refused_naming_the_version(tmp_path):
    p = tmp_path / "future.h5"
    with h5py.File(p, "w") as f:
        for k, v in root_attrs("sweep").items():
            f.attrs[k] = v
        f.attrs["spinsim_version"] = "9.0.0"
        f.attrs["spinsim_format"] = FILE_FORMAT + 1
    with pytest.raises(FileFormatError, match=rf"written by spinsim 9.0.0 \(file format {FILE_FORMAT + 1}\); "
                                              rf"this spinsim .* reads formats 1..{FILE_FORMAT}"):
        read_sweep(p)


def test_atomic_h5_leaves_the_old_file_on_error(tmp_path):
    p = tmp_path / "a.h5"
    with atomic_h5(p) as f:
        f["x"] = 1
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_h5(p) as f:
            f["x"] = 2
            raise RuntimeError("boom")
    with h5py.File(p) as f:
        assert f["x"][()] == 1
    assert [q.name for q in tmp_path.iterdir()] == ["a.h5"]          # no temporary left
