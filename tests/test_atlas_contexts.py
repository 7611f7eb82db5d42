"""Context length as an axis: seeded model-sampled and file contexts (nested prefixes), the Kac
normalisation, the T_c(N) fits on exact laws, and ``spinsim atlas --lengths`` end to end."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from spinsim.analysis.atlas_contexts import file_contexts, model_contexts, normalise, tc_scaling
from spinsim.cli import main

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def llama():
    from _tiny_models import loaded
    return loaded("llama")


@pytest.mark.slow
def test_model_contexts_are_seeded_and_nested(llama):
    a = model_contexts(llama, [3, 5], 2, seed=4, start="A dog")
    b = model_contexts(llama, [5, 3], 2, seed=4, start="A dog")
    assert a == b                                             # seeded; lengths sorted
    assert [len(c) for c in a[0]] == [3, 3] and [len(c) for c in a[1]] == [5, 5]
    assert all(a[1][s][:3] == a[0][s] for s in range(2))      # nested prefixes per sample
    assert a[1][0] != a[1][1]                                 # samples differ
    assert model_contexts(llama, [5], 2, seed=5, start="A dog") != [a[1]]


@pytest.mark.slow
def test_file_contexts_are_windows_of_the_text(llama):
    text = "A dog says woof. A cat says meow. The capital of France is Paris. " * 3
    toks = llama.encode(text)
    c = file_contexts(llama, text, [4, 6], 3, seed=1)
    for s in range(3):
        w = c[1][s]
        i = next(i for i in range(len(toks)) if toks[i:i + 6] == w)
        assert c[0][s] == toks[i:i + 4]
    with pytest.raises(ValueError, match="fewer than the largest length"):
        file_contexts(llama, "A dog", [40], 1)


def test_kac_divides_every_bond_by_N_minus_1():
    import spinsim as ss
    H = ss.lattices.complete_graph("heisenberg", 5, n_comp=3, normalize=False)
    rng = np.random.default_rng(0)
    S = rng.standard_normal((5, 3))
    S /= np.linalg.norm(S, axis=1, keepdims=True)
    assert normalise(H, "kac").energy(S) == pytest.approx(H.energy(S) / 4, rel=1e-12)
    assert normalise(H, "plain") is H
    with pytest.raises(ValueError, match="allowed: plain, kac"):
        normalise(H, "1/N")


def test_tc_scaling_recovers_exact_laws():
    N = np.array([8.0, 16.0, 32.0, 64.0])
    err = np.full(4, 0.01)
    f = tc_scaling(N, 1.0 + 0.5 * np.log(N), err)
    assert f["log_slope"] == pytest.approx(0.5, abs=1e-10) and f["log_slope_chi2"] == pytest.approx(0, abs=1e-12)
    g = tc_scaling(N, 2.0 * N ** 0.3, err)
    assert g["power"] == pytest.approx(0.3, abs=1e-10) and g["power_chi2"] == pytest.approx(0, abs=1e-12)
    assert f["log_slope_err"] > 0 and g["power_err"] > 0
    h = tc_scaling(N, [np.nan, 1.0, np.nan, np.nan], err)
    assert h["n_points"] == 1 and np.isnan(h["power"])


def test_atlas_over_lengths_and_samples(tmp_path, capsys):
    from _tiny_models import llama_dir

    from spinsim.analysis.atlas_store import read_atlas

    out = tmp_path / "n.h5"
    rc = main(["atlas", "--model", str(llama_dir()), "--prompt", "A dog", "--heads", "L1H0", "--lengths", "3,5",
               "--samples", "2", "--normalisation", "kac", "--T", "0.5:3:3", "--field", "0", "--sweeps", "20",
               "--max-sweeps", "20", "--chains", "1", "--quiet", "--device", "cpu", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    a = read_atlas(out)
    assert a.grid_shape == (1, 2, 2, 1, 3) and a.lengths.tolist() == [3, 5] and a.complete
    assert a.attrs["normalisation"].startswith("kac") and "sampled from the model" in a.attrs["contexts"]
    import json
    ctx = [[json.loads(c)["tokens"] for c in row] for row in a.contexts]
    assert all(len(c) == n for row, n in zip(ctx, (3, 5)) for c in row) and ctx[1][0][:3] == ctx[0][0]
    assert a.summary["T_c_length"].shape == (1, 2) and "tc_power" in a.summary
