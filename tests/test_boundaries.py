"""Phase-boundary lines against synthetic curves with known answers and independent closed forms."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

import spinsim as ss
from spinsim.analysis import boundaries as bd
from spinsim.phase import SweepResult
from spinsim.result import Boundary


def _sweep(T, h, direction, **obs):
    """A finished sweep in memory with the given observables (n_h, n_T)."""
    return SweepResult(T, h, direction=direction, fingerprint=[], attrs={},
                       done=np.ones(len(h), bool), **obs)


# ----------------------------------------------------------------------------- chi peaks
def test_susceptibility_peak_line_recovers_known_peaks():
    T = np.linspace(1.0, 3.0, 41)
    h = np.array([0.0, 0.5, 1.0, 1.5])
    T0 = np.array([2.0, 2.3, 2.61, np.nan])
    chi = np.empty((4, T.size))
    for k in range(3):
        chi[k] = 5.0 / (1.0 + ((T - T0[k]) / 0.3) ** 2)
    chi[3] = np.nan                                     # a row not computed yet
    chi_mono = np.linspace(0.1, 1.0, T.size)            # maximum on the edge: no peak
    chi = np.vstack([chi, chi_mono])
    h = np.append(h, 2.0)
    err = np.full_like(chi, 0.01)
    line = bd.susceptibility_peak_line(T, h, chi, err, n_resample=200)
    np.testing.assert_allclose(line.T[:3], T0[:3], atol=0.01)
    assert np.all(line.T_err[:3] < 0.02) and np.all(line.T_err[:3] > 0)
    assert np.isnan(line.T[3])
    assert line.at_edge.tolist() == [False, False, False, False, True]
    assert isinstance(line, Boundary) and line.param == "h" and "peak" in line.method


def test_binder_crossing_line_at_known_T_c():
    T = np.linspace(2.0, 2.6, 13)
    Tc = 2.27
    h = np.array([-0.1, 0.0, 0.1])

    def fake(L):
        U = np.empty((3, T.size))
        U[1] = 0.3 + 0.3 * np.tanh(-(T - Tc) * L)
        U[0] = U[2] = 0.6 + 0.001 * L                   # field: both stay ordered, never cross
        return ss.Result(T, h=h, binder=U, binder_err=np.full_like(U, 1e-4))

    fam = {8: fake(8), 16: fake(16), 32: fake(32)}
    lines = bd.binder_crossing_line(fam)
    assert sorted(lines) == ["binder_crossing_L16_32", "binder_crossing_L8_16"]
    for line in lines.values():
        assert abs(line.T[1] - Tc) < 0.005             # linear interpolation on a 0.05 grid
        assert np.isnan(line.T[0]) and np.isnan(line.T[2])
        assert "Binder" in line.method
    zero = bd.binder_crossing_line(fam, fields="zero")["binder_crossing_L8_16"]
    assert abs(zero.T[1] - Tc) < 0.005
    with pytest.raises(ValueError, match="at least two sizes"):
        bd.binder_crossing_line({8: fam[8]})
    with pytest.raises(ValueError, match="fields must be 'all' or 'zero', got 'some'"):
        bd.binder_crossing_line(fam, fields="some")


# ----------------------------------------------------------------------------- mean field
def test_mean_field_T_c_at_zero_field_is_the_top_eigenvalue():
    """Complete graph, symmetric M: T_c = (1/n) lambda_max(W + W^T) mu_max(M_s)."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((4, 2))
    M = A @ A.T + 0.3 * np.eye(4)
    N = 7
    H = ss.complete_graph("heisenberg", N, M=M, n_comp=4)
    expected = (N - 1) / N * np.linalg.eigvalsh(M)[-1] / 4
    line = bd.mean_field_line(H, [0.0])
    np.testing.assert_allclose(line.T[0], expected, rtol=1e-10)
    np.testing.assert_allclose(bd.mean_field_T_c(H), expected, rtol=1e-10)


def test_mean_field_ising_has_only_the_critical_point():
    H = ss.lattice("ising", (4, 4))
    line = bd.mean_field_line(H, [0.0, 0.1, 1.0])
    assert line.T[0] == pytest.approx(4.0)            # z J, each bond once, coordination 4
    assert np.isnan(line.T[1]) and np.isnan(line.T[2])


def _langevin(x: float) -> float:
    return 1.0 / np.tanh(x) - 1.0 / x if abs(x) > 1e-6 else x / 3.0


def _cw_transverse_T_c(h: float, Lam: float, a: float, c: float) -> float:
    """Curie-Weiss O(3), M = diag(a, b, c), field h along e_z (eigenvalue c < a): polarised
    m_z = L(beta (h + Lam c m_z)); the x-mode goes unstable where beta Lam a L(kappa)/kappa = 1."""
    def g(T):
        beta = 1.0 / T
        mz = brentq(lambda m: m - _langevin(beta * (h + Lam * c * m)), 1e-15, 1.0)
        kappa = beta * (h + Lam * c * mz)
        return beta * Lam * a * _langevin(kappa) / kappa - 1.0
    return brentq(g, 1e-3, Lam * a / 3.0 * (1 - 1e-12))


def test_mean_field_line_transverse_field_matches_closed_form():
    N, a, b, c = 10, 2.0, 1.0, 0.5
    H = ss.complete_graph("heisenberg", N, M=np.diag([a, b, c]))
    Lam = (N - 1) / N
    hs = np.array([0.0, 0.3, 1.0, 1.3, 1.4])             # h_c(T = 0) = Lam (a - c) = 1.35
    line = bd.mean_field_line(H, hs, direction=np.array([0.0, 0.0, 1.0]), T_min=1e-3)
    for k in range(4):
        ref = Lam * a / 3 if hs[k] == 0 else _cw_transverse_T_c(hs[k], Lam, a, c)
        np.testing.assert_allclose(line.T[k], ref, rtol=2e-5)
    assert np.isnan(line.T[4])
    assert np.all(np.diff(line.T[:4]) < 0)             # the field lowers T_c


# ----------------------------------------------------------------------------- level crossing
def test_level_crossing_formula():
    T = np.array([0.5, 1.0, 2.0])
    line = bd.level_crossing_line(T, E_A=-1.0, E_B=-0.4, p_A=0.2, p_B=0.8, labels=(" Paris", " Rome"))
    np.testing.assert_allclose(line.h, (-1.0 + 0.4) / (0.2 - 0.8))
    assert line.param == "T" and line.candidates == [" Paris", " Rome"]
    assert np.isnan(bd.level_crossing_line(T, -1.0, -0.4, 0.5, 0.5).h).all()
    Es = np.array([-1.0, -0.9, -0.8])                    # annealed bath: energies over T
    np.testing.assert_allclose(bd.level_crossing_line(T, Es, -0.4, 0.2, 0.8).h, (Es + 0.4) / -0.6)


def test_candidate_energies_and_the_crossing_field_against_H_energy():
    rng = np.random.default_rng(0)
    n, N = 3, 5
    A, B = rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
    bath = rng.standard_normal((N, n))
    bath /= np.linalg.norm(bath, axis=1, keepdims=True)
    probe = N - 1
    frozen = np.ones(N, bool)
    frozen[probe] = False
    H = ss.Hamiltonian(ss.causal(N), M=ss.LowRank(A, B), spin="heisenberg", h=rng.standard_normal((N, n)),
                       frozen=frozen, state=bath)
    S_A, S_B = np.array([1.0, 0, 0]), np.array([0, 0.6, 0.8])
    u = np.array([0.0, 1.0, 0.0])
    e = bd.candidate_energies(H, probe, S_A, S_B, direction=u)

    def total(Hx, s):
        S = bath.copy()
        S[probe] = s
        return Hx.energy(S)
    np.testing.assert_allclose(e["E_A"] - e["E_B"], total(H, S_A) - total(H, S_B), rtol=1e-12)
    hstar = bd.level_crossing_line([1.0], **e).h[0]
    U = np.zeros((N, n))
    U[probe] = u
    Hh = ss.replace(H, h=H.h + hstar * U)
    np.testing.assert_allclose(total(Hh, S_A), total(Hh, S_B), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="probe site 9 out of range 0..4"):
        bd.candidate_energies(H, 9, S_A, S_B, direction=u)


# ----------------------------------------------------------------------------- whole sweeps
def test_field_along_order():
    assert bd.field_along_order(ss.lattice("ising", (4, 4)), np.ones((16, 1)))
    Hx = ss.complete_graph("heisenberg", 5, M=np.diag([2.0, 1.0, 0.5]))
    assert bd.field_along_order(Hx, np.tile([1.0, 0, 0], (5, 1)))
    assert not bd.field_along_order(Hx, np.tile([0, 0, 1.0], (5, 1)))     # transverse field
    assert not bd.field_along_order(ss.lattice("ising", (4,), h=0.1), np.ones((4, 1)))


def test_sweep_boundaries_labels_every_line():
    H = ss.lattice("ising", (4, 4))
    T = np.linspace(1.5, 3.5, 9)
    h = np.array([-0.2, 0.0, 0.2])
    chi = np.vstack([1.0 / (1.0 + ((T - t0) / 0.4) ** 2) for t0 in (2.9, 2.4, 2.9)])
    sw = _sweep(T, h, np.ones((16, 1)), susceptibility=chi, susceptibility_err=0.01 * chi)
    cand = {"probe": 0, "A": np.array([1.0]), "B": np.array([-1.0]), "labels": ("up", "down"),
            "bath": np.ones((16, 1))}
    out = bd.sweep_boundaries(sw, H=H, candidates=cand, n_resample=100)
    assert sorted(out) == ["chi_peak", "coexistence", "level_crossing", "mean_field"]
    for line in out.values():
        assert isinstance(line, Boundary) and line.method and line.param in ("T", "h")
    assert out["coexistence"].T.tolist() == [1.5, pytest.approx(2.4, abs=0.02)]
    # probe in the field of 4 up neighbours: E_up - E_down = -8; p_up - p_down = 2: h* = -4
    np.testing.assert_allclose(out["level_crossing"].h, -4.0)


def test_large_systems_get_the_zero_field_mean_field_point_only():
    H = ss.complete_graph("heisenberg", 6, M=np.diag([2.0, 1.0, 0.5]))
    T = np.linspace(0.2, 1.0, 5)
    h = np.array([0.0, 0.5])
    sw = _sweep(T, h, np.tile([0, 0, 1.0], (6, 1)), susceptibility=np.ones((2, 5)))
    line = bd.sweep_boundaries(sw, H, n_resample=10, mean_field_max_size=10)["mean_field"]
    # complete graph W_ij = 1/N, O(3) spins: T_c = (1/n) lambda_max(W + W^T) mu_max(M_s)
    #                                            = (1/3) ((N - 1)/N) 2 = 5/9
    np.testing.assert_allclose(line.T[0], 5.0 / 9.0, rtol=1e-10)
    assert np.isnan(line.T[1]) and "only h = 0" in line.description
    full = bd.sweep_boundaries(sw, H, n_resample=10)["mean_field"]
    assert np.isfinite(full.T).all() and full.T[1] < full.T[0]


def test_add_boundary_to_a_sweep_file(tmp_path):
    from spinsim.phase import add_boundary, read_sweep, sweep

    out = tmp_path / "s.h5"
    sweep(ss.lattice("ising", (3, 3)), [1.0, 2.0], [0.0, 0.5], method="exact", out=out, progress=False)
    add_boundary(out, "level_crossing", bd.level_crossing_line([1.0, 2.0], -1.0, -0.5, 1.0, -1.0, ("a", "b")))
    line = read_sweep(out).boundaries["level_crossing"]
    np.testing.assert_allclose(line.h, -0.25)
    assert line.candidates == ["a", "b"] and line.param == "T" and "level crossing" in line.method
    with pytest.raises(TypeError, match="'x' must be a spinsim.result.Boundary, got dict"):
        add_boundary(out, "x", {"T": [1.0], "h": [0.0]})


def test_add_sweep_boundaries_stores_what_sweep_boundaries_computes(tmp_path):
    """The caller computes the lines and stores them through the phase store: the file then
    holds each line with its parameter as a dimension scale, and reads back equal."""
    import h5py

    from spinsim.phase import read_sweep, sweep

    out = tmp_path / "s.h5"
    H = ss.lattice("ising", (3, 3))
    res = sweep(H, [1.0, 2.0, 3.0], [0.0, 0.5], method="exact", out=out, progress=False)
    assert res.boundaries == {}
    lines = bd.add_sweep_boundaries(res, H, n_resample=10)
    assert sorted(lines) == ["chi_peak", "mean_field"] and res.boundaries.keys() == lines.keys()
    back = read_sweep(out).boundaries
    for name, line in lines.items():
        np.testing.assert_array_equal(back[name].T, line.T)
        np.testing.assert_array_equal(back[name].h, line.h)
        assert back[name].method == line.method
    np.testing.assert_array_equal(back["chi_peak"].at_edge, lines["chi_peak"].at_edge)
    assert back["chi_peak"].at_edge.dtype == bool
    assert back["mean_field"].T[0] == pytest.approx(4.0)      # z J: square lattice, coordination 4
    with h5py.File(out) as f:
        g = f["boundary/chi_peak"]
        assert g["h"].is_scale and g["T"].dims[0][0] == g["h"] and g["T"].attrs["units"]
    part = sweep(H, [1.0, 2.0, 3.0], [0.0, 0.5, 1.0], method="exact", progress=False,
                 executor=lambda tasks: iter([]))
    with pytest.raises(ValueError, match="need every row: 0 of 3 done"):
        bd.add_sweep_boundaries(part, H)
