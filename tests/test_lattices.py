"""spinsim.lattices: bond counts (each bond once), textbook names, SK statistics."""
import numpy as np
import pytest

import spinsim as ss


@pytest.mark.parametrize("shape, periodic, bonds", [
    ((8,), True, 8), ((8,), False, 7), ((4, 4), True, 32), ((4, 4), False, 24), ((3, 3, 3), True, 81),
    ((2, 2), True, 4),   # a periodic length-2 dimension gets one bond, not two
])
def test_each_bond_stored_once(shape, periodic, bonds):
    H = ss.lattice("ising", shape, periodic=periodic)
    W = H.W_dense
    assert W.sum() == bonds and np.all((W == 0) | (W.T == 0))
    E_ferro = H.energy(np.ones((H.n_sites, 1)))
    assert E_ferro == -bonds


def test_complete_graph_and_sk():
    H = ss.complete_graph("heisenberg", 6, J=1.0)
    assert abs(H.W_dense.sum() - 15 / 6) < 1e-12 and H.n_comp == 3
    sk = ss.sherrington_kirkpatrick(400, seed=3)
    w = sk.W_dense[np.triu_indices(400, 1)]
    assert abs(w.std() * np.sqrt(400) - 1.0) < 0.02 and np.all(np.tril(sk.W_dense) == 0)
    # the seed fixes the couplings: the same seed gives the same W, another seed other couplings
    a, b, c = (ss.sherrington_kirkpatrick(10, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.W_dense, b.W_dense)
    assert a.describe()["hamiltonian_sha256"] == b.describe()["hamiltonian_sha256"] != c.describe()["hamiltonian_sha256"]
    assert np.abs(a.W_dense - c.W_dense).max() > 0.1
    # the energy of an Ising configuration is -sum_{i<j} W_ij s_i s_j, each pair once
    s = np.where(np.random.default_rng(0).random(10) < 0.5, -1.0, 1.0)
    Wd = a.W_dense
    assert a.energy(s[:, None]) == pytest.approx(-sum(Wd[i, j] * s[i] * s[j] for i in range(10)
                                                      for j in range(i + 1, 10)), rel=1e-12)


def test_textbook_names():
    assert ss.textbook("xy2d", 4).n_comp == 2 and ss.textbook("heisenberg3d", 3).n_sites == 27
    with pytest.raises(ValueError, match="unknown system 'ising4d'"):
        ss.textbook("ising4d", 4)
    with pytest.raises(ValueError, match="--L must be an integer >= 2"):
        ss.textbook("ising2d", 1)
    c = ss.causal(4)
    assert c[3, :3].sum() == 3 and np.all(np.triu(c) == 0)
