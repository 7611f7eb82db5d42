"""The per-head summary rules on constructed atlases with known answers: Binder crossing and chi
peaks (exact on linear / symmetric curves), flagged points left out, disorder averages with
their errors, ordering kind, coupling class and the model's side."""
from __future__ import annotations

import numpy as np
import pytest

from spinsim.analysis.atlas_store import Atlas
from spinsim.analysis.atlas_summary import chain_overlap, disorder_average, summarize

T = np.round(np.linspace(1.0, 3.0, 11), 12)          # step 0.2
H_FIELD = np.array([0.0, 0.5])


def _atlas(n_head: int = 4) -> Atlas:
    a = Atlas([f"S{i}" for i in range(n_head)], -np.ones(n_head), -np.ones(n_head), [8, 16], 2, T, H_FIELD, 3)
    shape = a.grid_shape
    peak = np.array([2.0, 2.4])[None, None, None, :, None]
    chi = np.exp(-((T - peak) ** 2)) * np.ones(shape)
    delta = np.array([-0.01, 0.01])[None, None, :, None, None]
    a.values["susceptibility"] = chi + delta
    a.values["susceptibility_err"] = np.full(shape, 1e-4)
    slope = np.array([0.1, 0.2])[None, :, None, None, None]
    a.values["binder"] = 0.6 - slope * (T - 2.0) * np.ones(shape)
    a.values["binder_err"] = np.full(shape, 1e-4)
    a.values["magnetization"] = np.full(shape, 0.1)
    a.values["projection"] = np.full(shape, 0.0)
    a.done[:] = True
    a.facts["spin_length"][:] = 2.0
    a.facts["T_mf"][:] = 5.0
    a.facts["lambda_max"][:] = 2.0
    a.facts["lambda_min"][:] = -1.0
    return a


def test_disorder_average_and_its_error():
    a = _atlas()
    av = disorder_average(a, 0)
    np.testing.assert_allclose(av.values["susceptibility"], a.values["susceptibility"][0].mean(axis=1))
    np.testing.assert_allclose(av.values["susceptibility_err"], np.std([-0.01, 0.01], ddof=1) / np.sqrt(2))


def test_T_c_boundary_and_flags():
    a = _atlas()
    a.flagged[1, :, :, 1, T > 2.2] = True            # head 1: the h = 0.5 peak is flagged away
    s = summarize(a)
    assert list(s["T_c_method"]) == ["binder"] * 4
    np.testing.assert_allclose(s["T_c"], 2.0, atol=1e-12)      # linear U_8, U_16 cross at T = 2
    np.testing.assert_allclose(s["T_c_length"], 2.0, atol=1e-9)  # symmetric peak on a grid point
    np.testing.assert_allclose(s["boundary_T"][0], [2.0, 2.4], atol=1e-9)
    assert np.isnan(s["boundary_T"][1, 1]) and s["boundary_at_edge"][1, 1]
    assert s["n_flagged"][1] == a.flagged[1].sum() and s["n_flagged"][0] == 0
    assert list(s["model_side"]) == ["ordered"] * 4
    np.testing.assert_allclose(s["model_distance"], np.log(2.0))
    assert np.all(np.isnan(s["model_distance_bound"]))          # every T_c in the grid: nothing censored


def test_binder_falls_back_to_chi_peak_with_one_length():
    a = _atlas()
    a.values["binder"][:, 1] = a.values["binder"][:, 0]    # parallel curves: no crossing
    a.values["binder"][:, 1] += 0.05
    s = summarize(a)
    assert list(s["T_c_method"]) == ["chi_peak"] * 4
    np.testing.assert_allclose(s["T_c"], 2.0, atol=1e-9)


@pytest.mark.parametrize("mag, proj, T_mf, kind", [
    (1.6, 0.2, 5.0, "uniform"),      # q = 0.8
    (0.4, 1.8, 5.0, "pinned"),       # q_u = 0.9
    (0.2, 0.2, 0.5, "disordered"),   # lowest T = 1 > T_mf
    (0.2, 0.2, 5.0, "staggered"),
])
def test_ordering_kind_rule(mag, proj, T_mf, kind):
    a = _atlas(1)
    a.values["magnetization"][:] = mag
    a.values["projection"][:] = proj
    a.facts["T_mf"][:] = T_mf
    assert summarize(a)["kind"][0] == kind


def test_pinned_is_read_from_the_field_rows():
    """A pinned head is one the prompt field pins (the issue: "pinned by the prompt field"): read
    at the smallest h > 0, not at h = 0. Spins along their tokens at h = 0 only are not pinned; at
    h = 0.5 only, they are; a grid without h > 0 never says pinned; spontaneous order at h = 0
    (uniform) comes first."""
    a = _atlas(4)
    a.values["projection"][0, :, :, 0] = 1.8         # head 0: q_u = 0.9 at h = 0 only
    a.values["projection"][1, :, :, 1] = 1.8         # head 1: q_u = 0.9 at h = 0.5 only
    a.values["projection"][2, :, :, 1] = 1.8         # head 2: likewise, but ordered at h = 0
    a.values["magnetization"][2, :, :, 0] = 1.6
    a.values["projection"][3, :, :, 1] = 0.3         # head 3: q_u = 0.15 < q at h = 0.5
    a.values["magnetization"][3, :, :, 1] = 0.6
    s = summarize(a)
    assert list(s["kind"]) == ["staggered", "pinned", "uniform", "staggered"]
    np.testing.assert_allclose(s["pin_h"], 0.5)
    np.testing.assert_allclose(s["q_u_field"], [0.0, 0.9, 0.9, 0.15])
    np.testing.assert_allclose(s["q_u"], [0.9, 0.0, 0.0, 0.0])         # q and q_u: the h = 0 values
    b = Atlas(["S1"], [-1], [-1], [8, 16], 2, T, H_FIELD[:1], 3)      # h = 0 only
    b.values = {k: v[1:2, :, :, :1] for k, v in a.values.items()}
    b.values["projection"][:] = 1.8
    b.done[:] = True
    b.facts["T_mf"][:], b.facts["spin_length"][:] = 5.0, 2.0
    s = summarize(b)
    assert s["kind"][0] == "staggered" and np.isnan(s["pin_h"][0]) and s["q_u"][0] == pytest.approx(0.9)


@pytest.mark.parametrize("lam, cls", [((2.0, -1.0), "ferro"), ((1.0, -2.0), "antiferro"), ((1.0, -1.05), "mixed")])
def test_coupling_class(lam, cls):
    a = _atlas(1)
    a.facts["lambda_max"][:], a.facts["lambda_min"][:] = lam
    assert summarize(a)["coupling_class"][0] == cls


def test_no_peak_in_grid_gives_no_T_c():
    a = _atlas(1)
    a.lengths = np.array([8, 16])
    a.values["susceptibility"][:] = np.linspace(1, 2, T.size)    # monotone: maximum on the edge
    a.values["binder"][0, 1] = a.values["binder"][0, 0] + 0.05
    s = summarize(a)
    assert np.isnan(s["T_c"][0]) and s["T_c_method"][0] == "none" and s["T_c_at_edge"][0]
    assert s["model_side"][0] == "no T_c in grid"
    assert s["model_distance_bound"][0] == 0.0          # the grid starts at T = 1: T_c below it may be 1
    a.T = T - 0.5                                       # grid 0.5 .. 2.5: |ln T_c| > min(ln 2, ln 2.5)
    assert summarize(a)["model_distance_bound"][0] == pytest.approx(np.log(2.0))


def _one_prompt_atlas(chi_err: float) -> Atlas:
    """Two systems on one prompt (one length, one sample), chi peaked at T = 2.0 at every h."""
    a = Atlas(["S0", "S1"], -np.ones(2), -np.ones(2), [8], 1, T, H_FIELD, 3)
    a.values["susceptibility"] = np.exp(-((T - 2.0) ** 2)) * np.ones(a.grid_shape)
    a.values["susceptibility_err"] = np.full(a.grid_shape, chi_err)
    for k in ("magnetization", "projection"):
        a.values[k] = np.full(a.grid_shape, 0.1)
    a.done[:] = True
    a.facts["spin_length"][:], a.facts["T_mf"][:] = 2.0, 5.0
    a.facts["lambda_max"][:], a.facts["lambda_min"][:] = 2.0, -1.0
    return a


def test_a_reweighted_peak_does_not_override_an_edge_maximum():
    """One prompt (one sample, one length): the MBAR-reweighted peak is T_c where the raw chi
    maximum lies inside the grid; where it lies on the grid's edge the head has no T_c, even if
    the reweighted curve peaks just inside the last interval (SmolLM2 at 16 T: 87 heads)."""
    a = _one_prompt_atlas(chi_err=1e-3)
    a.values["susceptibility"][1] = np.linspace(1, 2, T.size)          # S1: monotone up to the edge
    a.facts["T_peak_rw"][:, 0, 0], a.facts["T_peak_rw_err"][:] = [2.01, 2.95], 0.01
    s = summarize(a)
    assert s["T_c"][0] == 2.01 and s["T_c_method"][0] == "chi_peak_reweighted" and not s["T_c_at_edge"][0]
    assert np.isnan(s["T_c"][1]) and s["T_c_method"][1] == "none" and s["T_c_at_edge"][1]


def test_raw_peak_needs_unflagged_neighbours_and_carries_the_grid_resolution():
    """chi peaked at T = 2.0 on a grid of step 0.2 (one length, one sample, no reweighted peak):
    T_c = 2.0 with an error of at least the grid's resolution 0.4 / (2 sqrt 12) = 0.058 (the chi
    values' own resampling spread is tiny here); with the grid neighbour T = 2.2 flagged the peak
    is not resolved: no T_c, and not 'at the edge'."""
    a = _one_prompt_atlas(chi_err=1e-6)
    a.flagged[1, 0, 0, :, 6] = True                                    # S1: T = 2.2 flagged
    s = summarize(a)
    assert s["T_c"][0] == pytest.approx(2.0, abs=0.01) and s["T_c_method"][0] == "chi_peak"
    assert 0.4 / (2 * np.sqrt(12)) <= s["T_c_err"][0] < 0.06
    assert np.isnan(s["T_c"][1]) and s["T_c_method"][1] == "none" and not s["T_c_at_edge"][1]


def test_ordering_kind_reads_the_lowest_unflagged_temperature():
    """Flagged points enter no estimate: the kind comes from the lowest T that is not flagged, and
    a head whose every point at h = 0 is flagged is 'unresolved'."""
    a = _atlas()
    a.values["magnetization"][..., 0] = 1.8                 # lowest T (1.0): ordered, q = 0.9
    a.flagged[0, :, :, 0, 0] = True                         # head 0: that point is flagged
    a.flagged[1, :, :, 0, :] = True                         # head 1: every point at h = 0
    s = summarize(a)
    assert s["kind"][2] == "uniform" and s["q"][2] == pytest.approx(0.9)
    assert s["kind"][0] == "staggered" and s["q"][0] == pytest.approx(0.05)   # read at T = 1.2
    assert s["kind"][1] == "unresolved" and np.isnan(s["q"][1])


def test_chain_overlap_counts_chains_ordered_along_plus_and_minus_v():
    """Two chains ordered along +v and -v: each is fully along v (overlap 1, error 0), where the
    chain-averaged moment cancels; a chain along v and one perpendicular to it average to 1/2
    with standard error std([1, 0]) / sqrt(2) = 1/2."""
    v = np.array([0.6, 0.8, 0.0])
    mean, err = chain_overlap(np.array([[0.9 * v, -0.9 * v]]), 2 * v)
    np.testing.assert_allclose(mean, [1.0], atol=1e-12)
    np.testing.assert_allclose(err, [0.0], atol=1e-12)
    assert np.linalg.norm(np.mean([0.9 * v, -0.9 * v], axis=0)) == 0.0     # what the old rule averaged
    mean, err = chain_overlap(np.array([[v, [0.0, 0.0, 2.0]], [v, [0.0, 0.0, 0.0]]]), v)
    np.testing.assert_allclose(mean, [0.5, 1.0], atol=1e-12)                # zero moment: left out
    np.testing.assert_allclose(err[0], 0.5, atol=1e-12)
    assert np.isnan(err[1])                                                 # one chain: no error
    with pytest.raises(ValueError, match="n_comp"):
        chain_overlap(np.ones((2, 3)), np.ones(2))


def test_summary_direction_overlap_at_the_kind_point_with_its_error():
    """The summary reads the per-system overlap at the lowest unflagged T, h = 0, largest length:
    sample mean +- std / sqrt(n_samples) with several samples, the chain error with one."""
    a = _atlas(1)
    a.facts["direction_overlap"][:] = 0.2
    a.facts["direction_overlap"][0, 1, :, 1] = [0.9, 0.7]       # largest length, T = 1.2
    a.flagged[0, :, :, 0, 0] = True                              # T = 1.0 flagged: the point is T = 1.2
    s = summarize(a)
    assert s["direction_overlap"][0] == pytest.approx(0.8)
    assert s["direction_overlap_err"][0] == pytest.approx(np.std([0.9, 0.7], ddof=1) / np.sqrt(2))
    b = Atlas(["S0"], [-1], [-1], [8], 1, T, H_FIELD, 3)
    b.values = {k: v[:1, 1:, :1] for k, v in a.values.items()}
    b.done[:] = True
    b.facts["direction_overlap"][:], b.facts["direction_overlap_err"][:] = 0.95, 0.02
    s = summarize(b)
    assert s["direction_overlap"][0] == pytest.approx(0.95) and s["direction_overlap_err"][0] == pytest.approx(0.02)
