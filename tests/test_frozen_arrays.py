"""A Hamiltonian owns read-only copies of its arrays: neither the caller's later writes to its
inputs nor writes through ``H.<array>`` can change the physics (or the hash that guards resumes),
also after a pickle round trip (sweep rows travel to Dask workers pickled)."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import spinsim as ss


def _system():
    rng = np.random.default_rng(3)
    W = np.triu(rng.normal(size=(4, 4)), 1)
    h = rng.normal(size=(4, 2))
    L = np.array([1.0, 2.0, 0.5, 1.5])
    F = np.array([False, True, False, False])
    S = np.zeros((4, 2))
    S[:, 0] = L
    axis = rng.normal(size=(4, 2))
    H = ss.Hamiltonian(W, M=ss.LowRank(rng.normal(size=(2, 1)), rng.normal(size=(2, 1))), h=h,
                       spin="xy", lengths=L, frozen=F, state=S, axes={"prompt": axis})
    return H, (W, h, L, F, S, axis)


def _arrays(H):
    return {"W": H.W, "h": H.h, "lengths": H.lengths, "frozen": H.frozen, "state": H.state,
            "axes['prompt']": H.axes["prompt"], "M.A": H.M.A, "M.B": H.M.B,
            **{f"neighbours()[{i}]": a for i, a in enumerate(H.neighbours())}}


def test_callers_inputs_are_copied():
    H, inputs = _system()
    E0 = H.energy(H.state)
    sha0 = H.describe()["hamiltonian_sha256"]
    n_free0 = H.n_free
    for x in inputs:
        x[...] = np.logical_not(x) if x.dtype == bool else x + 1.0
    assert H.n_free == n_free0 == 3
    assert H.energy(H.state) == E0
    assert H.describe()["hamiltonian_sha256"] == sha0


@pytest.mark.parametrize("roundtrip", [False, True])
def test_arrays_cannot_be_written(roundtrip):
    H, _ = _system()
    if roundtrip:
        H = pickle.loads(pickle.dumps(H))
    for name, arr in _arrays(H).items():
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 0
        assert not arr.flags.writeable, name
    Hd = ss.Hamiltonian(np.triu(np.ones((3, 3)), 1), M=ss.Dense(np.eye(3)))
    if roundtrip:
        Hd = pickle.loads(pickle.dumps(Hd))
    with pytest.raises(ValueError, match="read-only"):
        Hd.M.M[0, 0] = 5.0


def test_sparse_graph_is_copied_and_read_only():
    W = sp.csr_matrix(np.triu(np.ones((4, 4)), 1))
    H = ss.Hamiltonian(W, spin="ising")
    W.data[:] = 7.0
    assert H.W.toarray().max() == 1.0
    with pytest.raises(ValueError, match="read-only"):
        H.W.data[0] = 7.0


def test_low_rank_and_dense_couplings_hash_differently():
    """Dense([[1, 2], [3, 4]]) and LowRank([[1], [2]], [[3], [4]]) have the same raw bytes but
    different M ([[1, 2], [3, 4]] vs [[3, 4], [6, 8]]): different physics, different hash."""
    W = np.triu(np.ones((3, 3)), 1)
    Hd = ss.Hamiltonian(W, M=ss.Dense([[1.0, 2.0], [3.0, 4.0]]), spin="xy")
    Hl = ss.Hamiltonian(W, M=ss.LowRank([[1.0], [2.0]], [[3.0], [4.0]]), spin="xy")
    assert not np.allclose(Hd.M.dense(), Hl.M.dense())
    assert Hd.describe()["hamiltonian_sha256"] != Hl.describe()["hamiltonian_sha256"]
