"""Binned series in Monte Carlo results and files (issue 13 item 1): bins per point and chain,
rebinning with jackknife errors checked against exact enumeration, the HDF5 layout (h5py and
xarray without spinsim), and files written before bins."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

import spinsim as ss
from spinsim.bins import MIN_BINS, NoBinsError, bin_series

T4 = np.array([2.0, 2.5, 3.0])


@pytest.fixture(scope="module")
def ising4():
    H = ss.square("ising", 4)
    res = ss.solve(H, T=T4, method="mc", sweeps=3000, seed=11, n_chains=2)
    return H, res, ss.solve(H, T=T4, method="exact")


def test_mc_result_carries_bins(ising4):
    _, res, _ = ising4
    b = res.bins
    assert b.bins["E"].shape == (T4.size, 2, b.n_bins) and b.n_bins >= MIN_BINS
    assert b.bin_length == 3000 // MIN_BINS
    assert b.samples["E"].shape == (T4.size, 2, b.n_bins * b.samples_per_bin)
    # the bin means of E pooled are the run's mean energy (every bin of equal length)
    assert np.all(np.abs(b.bins["E"].mean(axis=(1, 2)) / 16 - res.energy) < 0.5 * res.energy_err)
    assert res.n_discard == 750 and np.all(res.tau_int > 0)


def test_bin_series_on_a_known_series():
    x = np.arange(200.0).reshape(2, 100)               # two chains of 100 sweeps: bins of 1
    bins, shift, L, samples, stride, spb = bin_series(x, np.ones_like(x), -np.ones_like(x), samples_per_chain=50)
    assert L == 1 and bins["E"].shape == (2, 100) and shift == pytest.approx(99.5)
    np.testing.assert_array_equal(bins["E"], x)
    np.testing.assert_allclose(bins["E2"], (x - 99.5) ** 2)
    assert np.all(bins["m4"] == 1) and np.all(bins["mu"] == -1) and np.all(bins["mu2"] == 1)
    x = np.arange(1000.0)[None]                        # 1000 sweeps: 66 bins of 15, the first 10 dropped
    bins, _, L, samples, stride, spb = bin_series(x, x, x, samples_per_chain=132)
    assert (L, bins["E"].shape, spb, stride) == (15, (1, 66), 2, 7)
    assert bins["E"][0, 0] == pytest.approx(np.mean(np.arange(10, 25)))
    np.testing.assert_array_equal(samples["E"][0, :4], [10, 17, 25, 32])


def test_rebin_recomputes_every_estimate_against_exact_enumeration(ising4):
    _, res, ex = ising4
    for factor in (1, 4):
        rb = res.rebin(factor)
        assert rb.meta["rebin"]["bin_length"] == res.bins.bin_length * factor
        for name in ("energy", "specific_heat", "magnetization", "susceptibility", "binder"):
            err = getattr(rb, name + "_err")
            assert np.all(err > 0), name
            assert np.all(np.abs(getattr(rb, name) - getattr(ex, name)) < 4 * err), (name, factor)
    assert res.rebin(8).bins.n_bins == res.bins.n_bins // 8
    with pytest.raises(ValueError, match="rebin factor must be an integer in 1.."):
        res.rebin(0)


def test_exact_result_has_no_bins(ising4):
    *_, ex = ising4
    with pytest.raises(NoBinsError, match="no binned series"):
        ex.rebin()


def test_bins_in_the_file_read_without_spinsim(ising4, tmp_path):
    _, res, _ = ising4
    path = res.to_hdf5(tmp_path / "r.h5")
    back = ss.Result.from_hdf5(path)
    for k, v in res.bins.bins.items():
        np.testing.assert_array_equal(back.bins.bins[k], v)
    np.testing.assert_array_equal(back.bins.samples["E"], res.bins.samples["E"])
    np.testing.assert_array_equal(back.rebin(2).specific_heat_err, res.rebin(2).specific_heat_err)
    with h5py.File(path, "r") as f:                  # plain h5py: dims, units, bin length
        d = f["result/bin_E"]
        assert [s.name for s in (d.dims[0][0], d.dims[1][0], d.dims[2][0])] == [
            "/result/T", "/result/chain", "/result/bin"]
        assert d.attrs["units"] and f["result"].attrs["bin_length"] == res.bins.bin_length
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    ds = xr.open_dataset(path, group="result", engine="h5netcdf")
    try:
        assert ds["bin_m4"].dims == ("T", "chain", "bin")
        assert ds["sample_E"].dims == ("T", "chain", "sample")
    finally:
        ds.close()


def test_file_without_bins_still_reads(ising4, tmp_path):
    _, res, _ = ising4
    path = res.to_hdf5(tmp_path / "old.h5")
    with h5py.File(path, "r+") as f:                 # as written before bins existed
        for name in list(f["result"]):
            if name.startswith(("bin_", "sample_")) or name in ("E_shift", "chain", "bin", "sample"):
                del f["result"][name]
    old = ss.Result.from_hdf5(path)
    assert old.bins is None
    np.testing.assert_array_equal(old.energy, res.energy)
    with pytest.raises(NoBinsError):
        old.rebin(2)


def test_sweep_stores_bins_per_row(tmp_path):
    H = ss.square("ising", 3)
    out = tmp_path / "s.h5"
    sw = ss.sweep(H, T=[2.0, 3.0], fields=[0.0, 0.5], out=out, sweeps=200, n_chains=1, progress=False)
    assert sw.bins.bins["E"].shape == (2, 2, 1, 66)
    back = ss.read_sweep(out)
    np.testing.assert_array_equal(back.bins.bins["m2"], sw.bins.bins["m2"])
    row = back.row(1)
    assert row.bins.grid_shape == (2,)
    np.testing.assert_allclose(row.rebin(1).energy, back.rebin(1).energy[1])


def test_rebin_keeps_rows_stored_before_bins_and_recomputes_the_others(tmp_path):
    """A sweep file begun before bins existed and resumed after: row 0 has estimates but no bins
    (NaN), row 1 has both. Rebinning keeps row 0's stored estimates (nothing can recompute them)
    and recomputes row 1 from its bins, as that row alone rebins."""
    H = ss.square("ising", 3)
    out = tmp_path / "s.h5"
    kw = dict(T=[2.0, 3.0], fields=[0.0, 0.5], out=out, sweeps=200, n_chains=1, progress=False, estimate=False)
    ss.sweep(H, **kw)
    with h5py.File(out, "r+") as f:          # as a file written before bins, with row 1 not yet done
        g = f["sweep"]
        for name in list(g):
            if name.startswith(("bin_", "sample_")) or name in ("E_shift", "chain", "bin", "sample"):
                del g[name]
        g["done"][1] = 0
        for name in ss.phase.SWEEP_OBSERVABLES:
            g[name][1] = np.nan
            g[name + "_err"][1] = np.nan
    old = ss.read_sweep(out)
    assert old.bins is None and old.done.tolist() == [True, False]
    mixed = ss.sweep(H, **kw)                 # resumes: row 1 runs with bins, row 0 has none
    assert np.isnan(mixed.bins.bins["E"][0]).all() and np.isfinite(mixed.bins.bins["E"][1]).all()
    back = ss.read_sweep(out)
    rb = back.rebin(2)
    assert rb.meta["rebin"]["kept"] == 2      # the two points of row 0
    for name in ("energy", "specific_heat", "susceptibility", "binder"):
        for k in (name, name + "_err"):
            np.testing.assert_array_equal(getattr(rb, k)[0], getattr(old, k)[0])
            assert np.all(np.isfinite(getattr(rb, k)[0])), k
            np.testing.assert_array_equal(getattr(rb, k)[1], getattr(back.row(1).rebin(2), k))
    assert not np.array_equal(rb.energy_err[1], back.energy_err[1])   # row 1 was recomputed
    with pytest.raises(NoBinsError, match="no point of this result has finite bins"):
        back.row(0).rebin(2)                  # row 0 alone: nothing to recompute


def test_an_unfinished_sweep_writes_each_rows_samples_once_beside_the_file(tmp_path):
    """Issue 13 review (10): an unfinished Monte Carlo sweep keeps each finished row's samples in
    its own file beside the sweep file, written once (the same file after later commits), not
    rewritten into the sweep file at every commit; read_sweep merges them (equal to those of an
    uninterrupted run, NaN for rows not done); the completed sweep holds them all in /sweep,
    every dataset equal to the uninterrupted run's, and the folder is gone."""
    from spinsim.phase import run_task
    H = ss.square("ising", 3)
    kw = dict(T=[2.0, 3.0], fields=[0.0, 0.3, 0.6], sweeps=200, n_chains=1, progress=False, estimate=False)
    ref = tmp_path / "ref.h5"
    ss.sweep(H, out=ref, **kw)
    out = tmp_path / "s.h5"
    folder = tmp_path / ".s.h5.samples"
    inodes = []

    def two_rows(tasks):                      # a run interrupted after two rows
        for i, task in enumerate(tasks):
            if i > 0:
                inodes.append((folder / "row-0.h5").stat().st_ino)
            if i == 2:
                raise KeyboardInterrupt
            yield run_task(task)
    with pytest.raises(KeyboardInterrupt):
        ss.sweep(H, out=out, executor=two_rows, **kw)
    assert len(inodes) == 2 and inodes[0] == inodes[1]            # row 0's samples written once
    assert sorted(p.name for p in folder.iterdir()) == ["row-0.h5", "row-1.h5"]
    with h5py.File(out) as f:
        assert not [n for n in f["sweep"] if n.startswith("sample")]
        assert f["sweep"].attrs["samples_pending"] == ".s.h5.samples" and "bin_E" in f["sweep"]
    part, whole = ss.read_sweep(out), ss.read_sweep(ref)
    for name, v in part.bins.samples.items():
        np.testing.assert_array_equal(v[:2], whole.bins.samples[name][:2])
        assert np.isnan(v[2]).all()
    assert (part.bins.sample_stride, part.bins.samples_per_bin) == (whole.bins.sample_stride, whole.bins.samples_per_bin)
    ss.sweep(H, out=out, **kw)                                    # resumes row 2 and completes
    assert not folder.exists()

    def datasets(p):
        with h5py.File(p) as f:
            return {n: d[()].tobytes() for n, d in f["sweep"].items() if d.dtype.kind != "O"}
    a, b = datasets(out), datasets(ref)
    assert a.keys() == b.keys() and "sample_E" in a and all(a[n] == b[n] for n in a)


def test_an_unfinished_sweep_copied_without_its_samples_folder_warns_and_refuses_to_resume(tmp_path):
    """The file copied (or renamed) without its .<name>.samples/ folder: reading it warns which
    finished rows lost their samples; resuming it is refused naming the rows and the folder (it
    used to complete the sweep with NaN stored as those rows' samples); with the folder put back
    beside it, it resumes."""
    import shutil

    from spinsim.io import InconsistentFileError
    from spinsim.phase import run_task
    H = ss.square("ising", 3)
    kw = dict(T=[2.0, 3.0], fields=[0.0, 0.3, 0.6], sweeps=200, n_chains=1, progress=False, estimate=False)
    out = tmp_path / "a" / "s.h5"
    out.parent.mkdir()

    def two_rows(tasks):
        for i, task in enumerate(tasks):
            if i == 2:
                raise KeyboardInterrupt
            yield run_task(task)
    with pytest.raises(KeyboardInterrupt):
        ss.sweep(H, out=out, executor=two_rows, **kw)
    copy = tmp_path / "b" / "s.h5"
    copy.parent.mkdir()
    shutil.copy(out, copy)
    with pytest.warns(RuntimeWarning, match=r"the thinned samples of finished row\(s\) \[0, 1\] are missing"):
        part = ss.read_sweep(copy)
    assert part.done.tolist() == [True, True, False] and np.isfinite(part.bins.bins["E"][:2]).all()
    with pytest.warns(RuntimeWarning), pytest.raises(InconsistentFileError,
                                                     match=r"finished row\(s\) \[0, 1\] were kept beside the file in "
                                                           r"\.s\.h5\.samples/ and are missing"):
        ss.sweep(H, out=copy, **kw)
    shutil.copytree(out.parent / ".s.h5.samples", copy.parent / ".s.h5.samples")
    res = ss.sweep(H, out=copy, **kw)
    assert res.done.all() and np.isfinite(res.bins.samples["E"]).all()
