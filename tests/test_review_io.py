"""Review of the format-2 files and the one Result (issue 10): defects found by trying to break
them, each pinned by a test that failed before its fix."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from spinsim import schema
from spinsim.result import Result


def test_an_error_name_of_an_observable_without_error_is_refused():
    """log_Z has no standard error: ``log_Z_err`` was accepted by Result() and then silently
    dropped (it is not in schema.names(errors=True)); now it is an unknown name."""
    with pytest.raises(KeyError, match="'log_Z_err'.*log_Z has no standard error"):
        schema.observable("log_Z_err")
    with pytest.raises(TypeError, match="log_Z_err"):
        Result([1.0], "exact", log_Z=[1.0], log_Z_err=[0.1])
    assert schema.observable("energy_err").name == "energy"


@pytest.mark.parametrize("meta", [
    {"nested": {"b": 1, "c": [1.5, 2.5]}},          # came back as the JSON string
    {"warnings": []},                               # came back as an empty float array
    {"ragged": [[1, 2], [3]]},                      # writing raised ValueError
    {"warnings": ["T=1: drift", "T=2: long tau"]},
    {"flag": True, "n": 3, "x": 0.25, "s": "text", "none": None},
], ids=["dict", "empty_list", "ragged_list", "str_list", "scalars"])
def test_result_meta_round_trips(tmp_path, meta):
    r = Result([1.0], "mc", energy=[0.5], energy_err=[0.1], meta=meta)
    back = Result.from_hdf5(r.to_hdf5(tmp_path / "r.h5"))
    assert back.meta == meta
    assert {type(v) for v in back.meta.values()} == {type(v) for v in meta.values()}


def test_every_dimension_of_a_result_file_has_a_scale(tmp_path):
    """ground_states is over (state, site, component): 'state' and 'site' had no dimension scale,
    so netCDF readers (xarray + h5netcdf) refused the whole result group ("mixing of labeled and
    unlabeled dimensions")."""
    S = np.ones((2, 3, 1))
    S[1] *= -1
    r = Result([0.0], "ground", energy=[-1.0], energy_err=[0.0], ground_states=S,
               magnetization_vector=np.ones((1, 1)), dos_energy=[-3.0, 3.0], dos_count=[2, 6])
    p = r.to_hdf5(tmp_path / "g.h5")
    with h5py.File(p) as f:
        g = f["result"]
        for name, d in g.items():
            for i, dim in enumerate(d.dims):
                if not d.is_scale:
                    assert len(dim) == 1, f"{name} axis {i} has no dimension scale"
        assert g["state"].is_scale and g["state"].shape == (2,) and g["site"].shape == (3,)
        assert g["site"].attrs["units"] == "index"
        assert [g["ground_states"].dims[i][0].name for i in range(3)] == \
               ["/result/state", "/result/site", "/result/component"]
    back = Result.from_hdf5(p)
    np.testing.assert_array_equal(back.ground_states, S)
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    ds = xr.open_dataset(p, group="result", engine="h5netcdf")
    assert ds["ground_states"].dims == ("state", "site", "component")
    assert ds["energy"].dims == ("T",) and ds["T"].attrs["units"] == "energy (k_B = 1)"
    ds.close()


def test_an_observable_off_the_grid_is_refused():
    """energy over 3 points on a 2-point T grid was accepted and written (a dataset longer than
    its attached T scale); now a ValueError names the observable and the grid."""
    with pytest.raises(ValueError, match=r"observable 'energy' must have the grid shape \(2,\) \(T\), got \(3,\)"):
        Result([1.0, 2.0], "x", energy=[1.0, 2.0, 3.0])
    s = Result([1.0, 2.0], "x", h=[0.0, 0.5, 1.0], energy=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"'binder_err' must have the grid shape \(3, 2\) \(h, T\), got \(2,\)"):
        s.binder_err = [0.0, 0.0]
    assert s.binder_err is None


def test_summary_of_an_h_x_T_result_without_mask():
    """A Result over h x T built without ``done`` is complete; summary() raised AttributeError."""
    s = Result([1.0, 2.0], "exact", h=[0.0, 0.5], energy=np.zeros((2, 2)))
    assert s.complete
    assert "2 x 2 (h, T) grid, 2 rows done" in s.summary()


def test_rounding_noise_is_not_an_autocorrelation():
    """|m| of a frozen chain (an ordered 3x3 Ising lattice at T = 0.5) is 1 up to rounding; the
    last bit flipping once made tau_int = n/4 (50 of 200 sweeps) and a false "tau_int is long"
    warning. A constant series has tau_int = 1/2 exactly."""
    from spinsim.observables import tau_int, thermodynamics

    m = np.r_[np.full(100, 1.0), np.full(100, np.nextafter(1.0, 2.0))]
    assert tau_int(m) == 0.5
    th = thermodynamics(np.full((1, 200), -18.0), m[None], m[None], T=0.5, n_free=9, n_comp=1)
    assert th.tau_int == 0.5 and th.estimates["energy"] == -2.0
    # a real two-level signal of the same shape is still strongly correlated (block of 100)
    assert tau_int(np.r_[np.full(100, 1.0), np.full(100, 0.5)]) > 10


def test_an_error_without_its_value_is_written(tmp_path):
    """Result(energy_err=...) without energy holds the error; the writer dropped it silently."""
    r = Result([1.0, 2.0], "x", energy_err=[0.1, 0.2], binder=[0.5, 0.6])
    back = Result.from_hdf5(r.to_hdf5(tmp_path / "e.h5"))
    assert sorted(back.values) == ["binder", "energy_err"]
    np.testing.assert_array_equal(back.energy_err, [0.1, 0.2])
    assert back.energy is None
