"""Numerics at the extremes (issue 16 item 3): correct, or refused naming the valid range.

Exact enumeration with off-lattice energies spanning 12 orders of magnitude against a reference
from exact rational energies (fractions) and 60-digit Boltzmann sums (mpmath); refusals of
energies and temperatures whose |E|/T overflows float64.
"""
from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

import spinsim as ss
from spinsim.validation import ENERGY_LIMIT, EnergyRangeError, check_energy_range


def _wide_ising(seed: int, N: int = 12) -> ss.Hamiltonian:
    """Ising spins with lengths log-uniform in 1e-6..1e6, Gaussian couplings and fields: energies
    up to ~1e10 that are not on a lattice, level splittings down to ~1e-6."""
    rng = np.random.default_rng(seed)
    L = 10 ** rng.uniform(-6, 6, N)
    W = np.triu(rng.standard_normal((N, N)), 1)
    h = rng.standard_normal((N, 1))
    return ss.Hamiltonian(W, M=1.0, spin="ising", lengths=L, h=h)


def _reference(H: ss.Hamiltonian, T: np.ndarray) -> dict[str, np.ndarray]:
    """E/N, C, chi and the level gap from exact rational energies of the float64 inputs and
    60-digit Boltzmann sums with variances about the mean."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 60
    N = H.n_sites
    W = H.W_dense
    Ks = [[Fraction(float(W[i, j] + W[j, i])) * Fraction(float(H.lengths[i])) * Fraction(float(H.lengths[j]))
           for j in range(N)] for i in range(N)]
    b = [Fraction(float(H.lengths[i])) * Fraction(float(H.h[i, 0])) for i in range(N)]
    E, M = [], []
    for s in itertools.product((1, -1), repeat=N):
        e = -sum(Ks[i][j] * s[i] * s[j] for i in range(N) for j in range(i + 1, N)) - sum(b[i] * s[i] for i in range(N))
        E.append(mp.mpf(e.numerator) / e.denominator)
        M.append(abs(mp.mpf(sum(float(H.lengths[i]) * s[i] for i in range(N)))) / N)
    E0 = min(E)
    gap = min(e for e in E if e > E0) - E0
    out = {"energy": [], "specific_heat": [], "susceptibility": [], "gap": float(gap)}
    for t in T:
        t = mp.mpf(float(t))
        w = [mp.exp(-(e - E0) / t) for e in E]
        Z = mp.fsum(w)
        Eb = mp.fsum(wi * e for wi, e in zip(w, E)) / Z
        Mb = mp.fsum(wi * m for wi, m in zip(w, M)) / Z
        out["energy"].append(float(Eb / N))
        out["specific_heat"].append(float(mp.fsum(wi * (e - Eb) ** 2 for wi, e in zip(w, E)) / Z / t ** 2 / N))
        out["susceptibility"].append(float(N * mp.fsum(wi * (m - Mb) ** 2 for wi, m in zip(w, M)) / Z / t))
    return out


@pytest.mark.parametrize("seed", [0, 4])
def test_exact_off_lattice_wide_energies_match_rational_reference(seed):
    """Before: NaN energy and C at T = 1e-6, negative chi, a 'gap' of 247 where it is 0.20.
    Now: every value agrees with the exact rational-energy reference at temperatures from 1e-6
    to 1e3, to the float64 limit: float64 energies of scale B carry an absolute error of a few
    eps B, so Boltzmann weights are good to ~beta eps B (rtol 20 beta eps B + 1e-9; 1e-12
    absolute for values that vanish); the T -> 0 values are exact limits."""
    H = _wide_ising(seed)
    T = np.array([1e-6, 1e-3, 0.1, 1.0, 1e3])
    res = ss.solve(H, T, method="exact")
    ref = _reference(H, T)
    assert res.meta["enumeration"] == "gray code, real energies, two passes"
    B = check_energy_range(H)
    rtol = 20 * np.finfo(float).eps * B / T + 1e-9
    np.testing.assert_allclose(res.energy, ref["energy"], rtol=1e-13)
    for name in ("specific_heat", "susceptibility"):
        got, want = getattr(res, name), np.asarray(ref[name])
        assert np.all(np.abs(got - want) <= rtol * np.abs(want) + 1e-12), (name, got, want)
    assert res.specific_heat[0] == 0.0 and res.susceptibility[0] == 0.0     # T -> 0 limit, gap >> T
    assert abs(res.gap - ref["gap"]) <= 20 * np.finfo(float).eps * B              # absolute, float64 limit
    assert any("T=0.001" in w for w in res.meta["warnings"])                 # beta eps B ~ 1e-3
    assert np.all(np.isfinite(res.log_Z))


def test_exact_specific_heat_of_a_two_level_spin_next_to_a_huge_energy():
    """Free spin A in a field 1e12 (locked at these T) and free spin B in a field 0.5: per free
    site C = (1/T)^2 e^{-1/T} / (1 + e^{-1/T})^2 / 2 and E = (-1e12 - 0.5 tanh(1/(2T))) / 2,
    exactly (rtol 1e-9 and 1e-15), at T = 0.05..30 (energies ~1e12, splitting 1)."""
    H = ss.Hamiltonian(np.zeros((3, 3)), M=1.0, spin="ising", h=np.array([[1e12], [0.5], [0.0]]),
                       lengths=[1.0, 1.0, 1e-6])
    T = np.array([0.05, 0.3, 1.0, 3.0, 30.0])
    res = ss.solve(H, T, method="exact")
    b = 1.0 / T
    C = b ** 2 * np.exp(-b) / (1 + np.exp(-b)) ** 2
    np.testing.assert_allclose(res.specific_heat, C / 3, rtol=1e-9)
    np.testing.assert_allclose(res.energy, (-1e12 - 0.5 * np.tanh(0.5 * b)) / 3, rtol=1e-15)


def test_exact_low_temperature_limit_down_to_the_range_floor():
    """T = 1e-290 on an O(1) Ising ring: the T -> 0 limit (E = E_0, C = 0), no NaN."""
    H = ss.chain("ising", 6)
    res = ss.solve(H, [1e-290, 1e-6], method="exact")
    np.testing.assert_allclose(res.energy, -1.0, rtol=1e-15)
    assert np.all(res.specific_heat == 0.0)
    assert np.all(np.isfinite(res.log_Z))


def test_temperatures_below_the_float64_range_are_refused_naming_it():
    H = ss.square("ising", 4)
    for method in ("exact", "mc"):
        with pytest.raises(EnergyRangeError, match=r"T = 1e-300 is too low .* T >= "):
            ss.solve(H, [1e-300, 1.0], method=method)


def test_fields_whose_energies_overflow_are_refused():
    H = ss.chain("ising", 8)
    big = ss.replace(H, h=np.full((8, 1), 1e300))
    with pytest.raises(EnergyRangeError, match=r"beyond 1e\+300"):
        ss.solve(big, 1.0, method="mc", sweeps=10)
    with pytest.raises(EnergyRangeError, match=r"added field h = 1e\+308"):
        ss.sweep(H, [1.0], [0.0, 1e308], method="exact", progress=False, estimate=False)
    assert check_energy_range(H, [1.0]) == pytest.approx(8.0)      # 8 bonds, each stored once: |E| <= 8
    assert ENERGY_LIMIT == 1e300


def test_sweep_never_marks_a_non_finite_row_done(tmp_path, monkeypatch):
    """A solver that returns a NaN energy: the row is refused, not stored as done."""
    from spinsim.phase import run as run_mod
    from spinsim.phase import task as task_mod

    real = task_mod.compute_row

    def nan_row(*a, **k):
        row = real(*a, **k)
        row["energy"] = np.full_like(row["energy"], np.nan)
        return row

    monkeypatch.setattr(task_mod, "compute_row", nan_row)
    with pytest.raises(run_mod.NonFiniteRowError, match="not marked done"):
        ss.sweep(ss.chain("ising", 4), [1.0], [0.0], method="exact", out=tmp_path / "s.h5",
                 progress=False, estimate=False)
    path = tmp_path / "s.h5"            # no file yet, or one without the row marked done
    assert not path.exists() or not ss.read_sweep(path).done.any()



@pytest.mark.parametrize("extra, needle", [(["--field", "1e308", "--T", "1"], "added field h = 1e+308"),
                                            (["--field", "0", "--T", "1e-300"], "T = 1e-300 is too low")])
def test_sweep_cli_refuses_overflowing_field_and_temperature(tmp_path, capsys, extra, needle):
    """Before: `--field 1e308` wrote NaN energies into a row marked done and exited 0. Now a usage
    error (exit 2), one line naming the value and the valid range, and no file."""
    from spinsim.cli import main

    out = tmp_path / "s.h5"
    code = main(["sweep", "--system", "ising1d", "--L", "4", "--method", "exact", "--seed", "0",
                 "--no-progress", "--out", str(out)] + extra)
    assert code == 2
    err = [x for x in capsys.readouterr().err.strip().splitlines() if x.strip()]
    assert len(err) == 1 and needle in err[0] and "1e+300" in err[0], err
    assert not out.exists()
