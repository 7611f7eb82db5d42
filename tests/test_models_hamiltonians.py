"""Head Hamiltonians: at T = 1 the pair Boltzmann weights are the model's attention logits (biases
exact), the probe over candidates has the exact rotary scores (fold), and the context-field probe
reproduces the paper's dL_theory."""
from __future__ import annotations

import numpy as np
import pytest

from _tiny_models import loaded
from spinsim.coupling import SiteLowRank
from spinsim.hamiltonian import Discrete, LowRank
from spinsim.models.capture import run_capture
from spinsim.models.hamiltonians import head_system
from spinsim.models.heads import apply_rotary, extract_heads

PROMPT = "The capital of France is Paris. The capital of Germany is"


def _softmax(s):
    e = np.exp(s - s.max())
    return e / e.sum()


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_pair_weights_are_attention_with_exact_biases(kind):
    lm = loaded(kind)
    ids = lm.encode(PROMPT)
    cap = run_capture(lm, [ids], attentions=True)
    l, h = 1, 2
    sysm = head_system(lm, (l, h), ids, input="residual", biases="exact")
    H = sysm.H
    assert isinstance(H.M, LowRank if kind == "gpt2" else SiteLowRank) and H.n_sites == len(ids)
    assert not H.frozen.any()
    np.testing.assert_allclose(H.lengths, np.linalg.norm(cap.x[0][l].astype(float), axis=1), rtol=1e-6)
    np.testing.assert_array_equal(H.W_dense, np.tril(np.ones((len(ids), len(ids))), -1))   # W_ij = 1, key j < query i
    S = H.state
    score = sysm.scores(S)
    # query i over keys j <= i: softmax of the Hamiltonian's pair score (+ its bias terms), every pair
    # at every offset (rotary heads: per-site factors, the default with every site free)
    for i in range(len(ids)):
        np.testing.assert_allclose(_softmax(score[i, : i + 1]), cap.attn[0][l, h, i, : i + 1], atol=1e-5)
    np.testing.assert_allclose(sysm.attention(), cap.attn[0][l, h], atol=1e-5)
    if kind == "llama":
        assert sysm.rotary == "exact" and H.provenance["rotary"] == "exact" and "rotary=exact" in H.name
        # the explicit 'drop' treatment: the offset-0 coupling, declared
        drop = head_system(lm, (l, h), ids, input="residual", biases="exact", rotary="drop")
        assert drop.rotary == "drop" and isinstance(drop.H.M, LowRank) and "rotary=drop" in drop.H.name
        hw = extract_heads(lm).head(l, h)
        x = cap.x[0][l].astype(float)
        q0, k0 = x @ hw.W_Q + hw.b_Q, x @ hw.W_K + hw.b_K
        dscore = drop.scores(S)
        # at offset 0 (j = i) the rotation cancels: the declared offset-0 score is the model's own
        tol = 1e-7 * np.abs(score).max()
        np.testing.assert_allclose(np.diag(dscore), np.diag(score), rtol=1e-6, atol=tol)
        # off the diagonal the rotation is dropped: scale s^2 q_i . k_j, unrotated (s: rope attention_scaling)
        np.testing.assert_allclose(dscore, hw.scale * hw.rotary_scaling ** 2 * q0 @ k0.T, rtol=1e-6, atol=tol)
        assert np.max(np.abs(np.tril(dscore - score, -1))) > 1e-3     # and that differs from the model's
        Ed = drop.H.energy(S) + drop.constant
        assert Ed == pytest.approx(-np.sum(np.tril(dscore, -1)), rel=1e-10)
    # the energy is minus the sum of bond scores (pairs j < i), bias fields and constant included
    E = H.energy(S) + sysm.constant
    assert E == pytest.approx(-np.sum(np.tril(score, -1)), rel=1e-10)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_probe_energies_are_the_models_scores(kind):
    lm = loaded(kind)
    ids = lm.encode(PROMPT)
    cands = ["Berlin", "Rome", "Paris"]
    l, h = 2, 1
    # the tiny tokenizer writes " Berlin" as " " + "B"...: the probe reads the first differing token,
    # the shared " " joins the bath
    sysm = head_system(lm, f"L{l}H{h}", PROMPT, input="residual", biases="exact", candidates=cands,
                       first_differing=True)
    H = sysm.H
    ids = [int(t) for t in sysm.tokens]
    N = len(ids)
    assert isinstance(H.spin, Discrete) and H.frozen[:N].all() and not H.frozen[N]
    assert sysm.rotary == ("fold" if kind == "llama" else "none")
    hw = extract_heads(lm).head(l, h)
    cap = run_capture(lm, [list(ids) + [int(c)] for c in sysm.candidates], attentions=True)
    energies, scores = [], []
    for k, c in enumerate(sysm.candidates):
        x = cap.x[k][l].astype(np.float64)                     # (N + 1, d) inputs of prompt + candidate
        q = x @ hw.W_Q + hw.b_Q
        kk = x @ hw.W_K + hw.b_K
        if hw.rotary:
            q = apply_rotary(q, np.arange(N + 1), hw.inv_freq)
            kk = apply_rotary(kk, np.arange(N + 1), hw.inv_freq)
        exact = hw.scale * kk[:N] @ q[N]                        # the candidate's scores on the prompt
        S = H.state.copy()
        S[N] = sysm.candidate_vectors[k]
        S0 = S.copy()
        S0[N] = 0.0                                            # the bath alone
        # the probe's energy is minus its bond scores, up to the c-independent key-bias terms
        E_probe = H.energy(S) - H.energy(S0)
        assert E_probe == pytest.approx(-exact.sum() + sysm.X @ sysm.key_bias @ np.ones(N) + N * sysm.bias_const,
                                        rel=1e-6, abs=1e-6)
        energies.append(E_probe)
        scores.append(exact.sum())
        # the self score (single-site term) is the model's diagonal score
        assert sysm.self_score[k] == pytest.approx(hw.scale * q[N] @ kk[N], rel=1e-6)
        # and the model's attention of the candidate query is the softmax of these scores + self
        np.testing.assert_allclose(_softmax(np.append(exact, sysm.self_score[k])), cap.attn[k][l, h, N], atol=1e-5)
    # log P_A / P_B at T = 1 is E_B - E_A = score_A - score_B
    assert energies[1] - energies[0] == pytest.approx(scores[0] - scores[1], rel=1e-6, abs=1e-6)


def test_context_field_probe_reproduces_paper_gap():
    """Tied GPT-2, raw embeddings, no bonds: E_B - E_A of the probe = N0 . (s_A - s_B) = dL_theory."""
    from spinsim.models.attention import context_field

    lm = loaded("gpt2")
    ids = lm.encode(PROMPT)
    sysm = head_system(lm, "L3H5", PROMPT, input="embed", biases="drop", candidates=["Berlin", "Rome"],
                       probe_bonds=False, context_field=True, heads=extract_heads(lm, "paper"), first_differing=True)
    ids = [int(t) for t in sysm.tokens]                  # the prompt + the answers' shared " "
    H, N = sysm.H, len(ids)
    wte = lm.weights.get("wte.weight").astype(np.float64)
    hw = extract_heads(lm, "paper").head(3, 5)
    N0, alpha = context_field(hw, wte[ids])
    assert alpha.size == N and alpha.sum() == pytest.approx(1.0)
    E = []
    for k in range(2):
        S = H.state.copy()
        S[N] = sysm.candidate_vectors[k]
        E.append(H.energy(S))
    a, b = sysm.candidates
    assert E[1] - E[0] == pytest.approx(N0 @ (wte[a] - wte[b]), rel=1e-9)


def test_head_system_errors():
    lm = loaded("llama")
    ids = lm.encode(PROMPT)
    with pytest.raises(ValueError, match="rotary='fold' needs a probe"):
        head_system(lm, "L0H0", ids, rotary="fold")
    with pytest.raises(ValueError, match="unknown input mode 'raw'"):
        head_system(lm, "L0H0", ids, input="raw")
    with pytest.raises(ValueError, match="'L9H0' out of range"):
        head_system(lm, "L9H0", ids)
    sysm = head_system(lm, "L0H0", ids, input="embed", prompt_field=2.0, biases="drop")
    assert sysm.rotary == "none"
    # embed inputs: the prompt axis is each token's embedding row, normalised, and the field is 2.0 along it
    E = np.asarray(lm.weights.get("model.embed_tokens.weight"), np.float64)[ids]
    u = E / np.linalg.norm(E, axis=1, keepdims=True)
    np.testing.assert_allclose(sysm.H.axes["prompt"], u, rtol=1e-12)
    np.testing.assert_allclose(sysm.H.h, 2.0 * u, rtol=1e-12)
    assert sysm.H.provenance["prompt_field"] == 2.0 and sysm.H.provenance["head"] == "L0H0"


def test_engine_solves_the_probe_exactly():
    """The probe system goes straight into spinsim.solve: exact enumeration over the candidates
    gives the Boltzmann average of the probe energies at every T."""
    from spinsim import solve

    lm = loaded("llama")
    sysm = head_system(lm, "L1H2", "The capital of France is", candidates=["Berlin", "Rome", "Paris"],
                       first_differing=True)
    H = sysm.H
    E = []
    for k in range(3):
        S = H.state.copy()
        S[-1] = sysm.candidate_vectors[k]
        E.append(H.energy(S))
    E = np.array(E)
    for T in (0.5, 1.0, 2.0):
        w = np.exp(-(E - E.min()) / T)
        w /= w.sum()
        assert solve(H, T=T, method="exact").energy[0] == pytest.approx(w @ E / H.n_free, rel=1e-10)
