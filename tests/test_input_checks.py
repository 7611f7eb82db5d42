"""Engine input checks (issue 16 item 4): complex arrays are refused, not cast to their real part;
a lattice size 2.7 is not truncated to 2; J = "1" is a ValueError naming it, not a numpy
TypeError; a NaN initial state and resync <= 0 are refused before any sweep."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import spinsim
from spinsim import Hamiltonian
from spinsim.coupling import Dense, Identity, LowRank
from spinsim.lattices import causal, complete_graph, lattice, sherrington_kirkpatrick, square

W3 = np.triu(np.ones((3, 3)), 1)


@pytest.fixture(autouse=True)
def _no_complex_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a silent cast would warn (ComplexWarning): fail instead
        yield


def test_complex_arrays_are_refused_naming_them():
    for kw, what in ((dict(W=W3 + 0j), "graph W"), (dict(W=W3, M=np.eye(3) * (1 + 0.5j)), "coupling M"),
                     (dict(W=W3, h=np.zeros((3, 3)) + 1j), "field h"),
                     (dict(W=W3, lengths=np.ones(3) + 0j), "lengths")):
        with pytest.raises(ValueError, match=rf"{what} is complex \(dtype complex128\); spinsim's Hamiltonians are real"):
            Hamiltonian(spin="heisenberg", **{"M": np.eye(3), **kw})
    with pytest.raises(ValueError, match="coupling M is complex"):
        Dense(np.eye(2) + 0j)
    with pytest.raises(ValueError, match="coupling factor B is complex"):
        LowRank(np.ones((3, 1)), np.ones((3, 1)) * 1j)
    with pytest.raises(ValueError, match="graph W must hold real numbers, got dtype <U1"):
        Hamiltonian(np.array([["0", "1"], ["0", "0"]]), spin="ising")


@pytest.mark.parametrize("shape", [2.7, 2.0, (4, 2.7), (4, True)])
def test_lattice_shape_must_be_integers(shape):
    with pytest.raises(ValueError, match=r"lattice shape must be positive integers, got"):
        lattice("ising", shape)
    assert lattice("ising", np.int64(3)).n_sites == 3 and square("ising", 2).n_sites == 4


def test_couplings_and_sizes_are_numbers():
    with pytest.raises(ValueError, match=r"coupling J must be a finite real number, got '1'"):
        lattice("ising", 4, J="1")
    with pytest.raises(ValueError, match=r"coupling J must be a real number, got '1' \(str\)"):
        Identity(3, "1")
    with pytest.raises(ValueError, match=r"complete graph: N \(sites\) must be an integer >= 2, got 4.5"):
        complete_graph("ising", 4.5)
    with pytest.raises(ValueError, match=r"SK model: N \(sites\) must be an integer >= 2, got 3.0"):
        sherrington_kirkpatrick(3.0)
    with pytest.raises(ValueError, match=r"causal graph: N \(sites\) must be an integer >= 1, got 0"):
        causal(0)


def test_nan_initial_state_and_resync_are_refused():
    H = square("ising", 2)
    with pytest.raises(ValueError, match=r"spin configuration has a non-finite entry nan at index \(0, 0\)"):
        spinsim.solve(H, T=1.0, method="mc", sweeps=10, init=np.full((4, 1), np.nan))
    with pytest.raises(ValueError, match="resync must be an integer >= 1, got 0"):
        spinsim.solve(H, T=1.0, method="mc", sweeps=10, resync=0)
    Hh = lattice("heisenberg", 3)
    S = np.tile([1.0, 0.0, 0.0], (3, 1))
    S[1] = [np.nan, 0.0, 0.0]
    with pytest.raises(ValueError, match="spin configuration has a non-finite entry nan at index \\(1, 0\\)"):
        Hh.check_state(S)
