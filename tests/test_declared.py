"""Data a Hamiltonian declares: it is frozen, its ``axes`` and ``provenance`` survive
``spinsim.replace``, pickling and a sweep (whose file then scans the declared axis and names the
model)."""
from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest

import spinsim as ss
from spinsim.directions import resolve_direction
from spinsim.hamiltonian import FrozenHamiltonianError


def _declared(N: int = 3, n: int = 2) -> ss.Hamiltonian:
    rng = np.random.default_rng(0)
    U = rng.standard_normal((N, n))
    return ss.Hamiltonian(np.tril(np.ones((N, N)), -1), M=ss.Dense(rng.standard_normal((n, n))), spin=ss.Heisenberg(n),
                          name="toy", axes={"prompt": U}, provenance={"model_id": "toy-model", "head": "L0H1",
                                                                      "n_prompt_tokens": np.int64(N)})


def test_replace_keeps_axes_provenance_and_name():
    H = _declared()
    H2 = ss.replace(H, h=np.array([0.3, -0.1]))
    assert set(H2.axes) == {"prompt"} and H2.name == "toy"
    np.testing.assert_array_equal(H2.axes["prompt"], H.axes["prompt"])
    assert dict(H2.provenance) == {"model_id": "toy-model", "head": "L0H1", "n_prompt_tokens": 3}
    assert type(H2.provenance["n_prompt_tokens"]) is int                    # numpy scalars become JSON scalars
    np.testing.assert_array_equal(H2.h, np.broadcast_to([0.3, -0.1], (3, 2)))   # the change itself happened
    # and they can be replaced explicitly
    assert len(ss.replace(H, axes={}, provenance={}).axes) == 0
    with pytest.raises(ValueError, match="unknown argument 'prompt_directions'"):
        ss.replace(H, prompt_directions=H.axes["prompt"])


def test_describe_names_the_model_and_hash_ignores_provenance():
    H = _declared()
    d = H.describe()
    assert d["model_id"] == "toy-model" and d["head"] == "L0H1" and d["axes"] == "prompt"
    bare = ss.replace(H, axes={}, provenance={}).describe()
    assert "model_id" not in bare and bare["axes"] == ""
    assert bare["hamiltonian_sha256"] == d["hamiltonian_sha256"]           # the physics is the same


def test_hamiltonian_is_frozen():
    H = _declared()
    with pytest.raises(FrozenHamiltonianError, match="cannot set 'h'"):
        H.h = np.zeros((3, 2))
    with pytest.raises(AttributeError, match="frozen"):
        H.prompt_directions = H.axes["prompt"]                 # the old way of attaching head data
    with pytest.raises(FrozenHamiltonianError):
        del H.name
    with pytest.raises(TypeError):
        H.axes["other"] = np.ones((3, 2))                      # read-only mapping
    with pytest.raises(ValueError, match="read-only"):
        H.axes["prompt"][0, 0] = 1.0
    # the lazily cached neighbour lists still work on a frozen instance
    ptr, idx, w_out, w_in = H.neighbours()
    assert ptr.tolist() == [0, 2, 4, 6] and H.neighbours()[0] is ptr


def test_axes_and_provenance_are_checked():
    W = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"axis 'prompt' must have shape \(2, 3\)"):
        ss.Hamiltonian(W, axes={"prompt": np.ones((2, 2))})
    with pytest.raises(ValueError, match="axis 'prompt' has a non-finite entry nan at index"):
        ss.Hamiltonian(W, axes={"prompt": [[1, 0, 0], [np.nan, 0, 0]]})
    with pytest.raises(ValueError, match="axis name 'field' is reserved"):
        ss.Hamiltonian(W, axes={"field": np.ones((2, 3))})
    with pytest.raises(ValueError, match=r"provenance\['layers'\] must be a str, bool, int or float"):
        ss.Hamiltonian(W, provenance={"layers": [1, 2]})
    with pytest.raises(ValueError, match="provenance key 'n_sites' would shadow a describe"):
        ss.Hamiltonian(W, provenance={"n_sites": 7})


def test_pickle_keeps_declared_data():
    H = pickle.loads(pickle.dumps(_declared()))
    assert H.provenance["model_id"] == "toy-model"
    np.testing.assert_array_equal(H.axes["prompt"], _declared().axes["prompt"])
    with pytest.raises(FrozenHamiltonianError):
        H.name = "x"


def test_resolve_direction_reads_declared_axes():
    H = _declared()
    U = H.axes["prompt"]
    expect = U / np.linalg.norm(U, axis=1, keepdims=True)
    for direction in (None, "prompt"):                                    # a declared prompt axis is the default
        got, label = resolve_direction(H, direction)
        np.testing.assert_allclose(got, expect, rtol=1e-15)
        assert label.startswith("prompt")
    bare = ss.replace(H, axes={})
    with pytest.raises(ValueError, match="declares no axes"):
        resolve_direction(bare, "prompt")
    with pytest.raises(ValueError, match=r"unknown direction 'promt'.*axes 'prompt'"):
        resolve_direction(H, "promt")


def test_sweep_of_a_replaced_head_hamiltonian_scans_the_prompt_axis(tmp_path):
    """A replaced head Hamiltonian still sweeps along x_i/|x_i| (not M_s's top eigenvector, the
    fallback without a prompt axis) and its file names the model."""
    from _tiny_models import loaded
    from spinsim.models.hamiltonians import head_system

    lm = loaded("gpt2")
    ids = lm.encode("The capital of France is")[:3]
    H = head_system(lm, "L1H2", ids, input="embed", biases="drop").H    # no field: the fallback is the eigenvector
    X = np.asarray(lm.weights.get("wte.weight"), np.float64)[ids]       # embed inputs: the token embeddings
    dirs = X / np.linalg.norm(X, axis=1, keepdims=True)
    # each site a token-vocabulary spin over the prompt's own token directions: 3^3 states, exact
    Hr = ss.replace(H, spin=ss.Discrete(dirs))
    top, _ = resolve_direction(ss.replace(Hr, axes={}))
    assert np.max(np.abs(np.abs(top) - np.abs(dirs))) > 0.1              # the two directions do differ
    path = tmp_path / "head.h5"
    T, fields = [0.5, 2.0], [0.0, 1e4]
    sw = ss.sweep(Hr, T, fields, method="exact", out=path, progress=False, estimate=False)
    with h5py.File(path, "r") as f:
        np.testing.assert_allclose(f["sweep/direction"][()], dirs, rtol=1e-12, atol=1e-15)
        assert f.attrs["model_id"] == lm.model_id and f.attrs["head"] == "L1H2"
        assert f.attrs["weights_sha256"] == lm.weights_sha256 and f.attrs["input_mode"] == "embed"
        assert str(f.attrs["direction"]).startswith("prompt")
    # a strong field along the prompt axis pins sigma_i = x_i/|x_i|: <m_u> = (1/N) sum_i |x_i| u_i . u_i
    proj = np.asarray(sw["projection"])
    np.testing.assert_allclose(proj[1], np.linalg.norm(X, axis=1).mean(), rtol=1e-9)
