"""spinsim/kernels/chunked.py: enumeration chunks on a thread pool give the same bits as on one
thread (the test session runs Numba with one thread, so the pool is forced here)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import spinsim as ss
import spinsim.kernels.chunked as chunked


def test_slices_cover_every_chunk_once_on_several_threads(monkeypatch):
    monkeypatch.setattr(chunked.numba, "get_num_threads", lambda: 3)
    calls, lock = [], threading.Lock()

    def kernel(out, c0, c1):
        with lock:
            calls.append((c0, c1, threading.current_thread().name))
        out[c0:c1] += 1

    out = np.zeros(8, np.int64)
    chunked.run_chunks(kernel, 8, out)
    assert np.all(out == 1) and sorted(c[:2] for c in calls) == [(0, 2), (2, 5), (5, 8)]
    assert all(name.startswith("spinsim-enum") for *_, name in calls)
    with pytest.raises(ValueError, match="in a slice"):          # a slice's error reaches the caller
        chunked.run_chunks(lambda c0, c1: (_ for _ in ()).throw(ValueError("in a slice")), 4)


def _systems():
    rng = np.random.default_rng(0)
    V = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    W = rng.standard_normal((9, 9))
    np.fill_diagonal(W, 0)
    return {"ising_lattice": ss.chain("ising", 14, h=0.3),                    # integer levels
            "ising_lengths": ss.Hamiltonian(ss.chain("ising", 14).W, spin=ss.Ising(),
                                            lengths=np.linspace(1, 2, 14)),  # per-level moments
            "ising_real": ss.sherrington_kirkpatrick(15, seed=2, h=0.05),   # two real-energy passes
            "discrete": ss.Hamiltonian(W, M=ss.Identity(2, 1.0), spin=ss.Discrete(V))}


@pytest.mark.parametrize("name", ["ising_lattice", "ising_lengths", "ising_real", "discrete"])
def test_exact_results_do_not_depend_on_the_number_of_threads(name, monkeypatch):
    H = _systems()[name]
    T = np.array([0.6, 1.4, 3.0])
    one = ss.solve(H, T, method="exact")
    monkeypatch.setattr(chunked.numba, "get_num_threads", lambda: 3)
    three = ss.solve(H, T, method="exact")
    for obs in ("energy", "specific_heat", "susceptibility", "binder"):
        np.testing.assert_array_equal(getattr(three, obs), getattr(one, obs), err_msg=obs)
    np.testing.assert_array_equal(three.ground_states, one.ground_states)
