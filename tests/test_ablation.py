"""Head ablation: the hook removes exactly the head's contribution; the fast replay equals full
forward passes; predicted shifts are the heads' direct contributions."""
from __future__ import annotations

import numpy as np
import pytest

from _tiny_models import gpt2_model, llama_model, loaded, random_items
from spinsim.analysis.ablation import ablate_heads, ablation_study, paper_ablation_test
from spinsim.analysis.gaps import GapMode, actual_gaps, run_forward, theory_gaps
from spinsim.models import arch
from spinsim.models.capture import run_capture
from spinsim.models.heads import extract_heads
from spinsim.models.loading import model_from_module


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_hook_removes_exactly_the_heads_contribution_in_one_layer(kind, mode):
    """One attention layer, MLP output zeroed: the residual stream is linear in each head's output,
    so ablating head h moves it by exactly (z_repl - z_h) W_O and the logits follow through the
    final norm and unembedding, to 1e-5."""
    m = gpt2_model(n_layer=1, n_head=4, n_embd=32, seed=5, zero_mlp=True) if kind == "gpt2" else \
        llama_model(n_layer=1, n_head=4, n_kv=2, d=32, seed=6, zero_mlp=True)
    lm = model_from_module(m, None)
    heads = extract_heads(lm)
    ids = [5, 17, 3, 99, 42, 7, 250, 11]
    clean = run_capture(lm, [ids], head_outputs=True, logit_positions=[list(range(len(ids)))])
    dh = heads.d_head
    norm = arch.final_norm(lm)
    U = lm.weights.get("lm_head.weight").astype(np.float64)
    for h in range(4):
        z = clean.z[0][0, :, h * dh:(h + 1) * dh].astype(np.float64)
        repl = np.zeros(dh) if mode == "zero" else np.array([0.3, -1.0] * (dh // 2))
        means = {(0, h): repl}
        with ablate_heads(lm, [(0, h)], mode, means):
            abl = run_capture(lm, [ids], logit_positions=[list(range(len(ids)))])
        delta = (repl[None, :] - z) @ heads.W_O[0, h]
        np.testing.assert_allclose(abl.final_in[0], clean.final_in[0] + delta, atol=1e-5)
        expect = norm(clean.final_in[0].astype(np.float64) + delta) @ U.T
        np.testing.assert_allclose(abl.logits[0], expect, atol=1e-5)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
@pytest.mark.parametrize("candidates", ["first", "full"])
def test_fast_replay_equals_full_forward_and_predictions_are_direct_contributions(kind, candidates):
    lm = loaded(kind)
    heads = extract_heads(lm)
    items = random_items(5, seed=3)
    which = [(0, 1), (1, 0), (2, 3)]
    res = ablation_study(lm, heads, items, which, ("zero", "mean"), candidates)
    study = run_forward(lm, items, residual=True)
    clean = actual_gaps(study, candidates)
    np.testing.assert_allclose(res.clean, clean, atol=1e-5)
    means = res.extras["means"]
    for mi, mode in enumerate(("zero", "mean")):
        for l, h in which:
            with ablate_heads(lm, [(l, h)], mode, {(l, h): means[l, h]}):
                abl = actual_gaps(run_forward(lm, items, residual=False), candidates)
            np.testing.assert_allclose(res.measured[mi, :, l, h], abl - clean, atol=2e-5)
    assert np.isnan(res.measured[0, :, 0, 0]).all()        # not ablated
    # zero ablation removes the head's direct contribution: predicted = -dL_theory(corrected)
    th = theory_gaps(study, heads, lm, GapMode.corrected().with_(candidates=candidates))
    for l, h in which:
        np.testing.assert_allclose(res.predicted[0, :, l, h], -th[:, l, h], rtol=1e-4, atol=1e-6)   # float32 z


def test_predicted_tracks_measured_in_an_attention_only_layer():
    m = gpt2_model(n_layer=1, n_head=6, n_embd=48, seed=8, zero_mlp=True)
    with __import__("torch").no_grad():
        m.transformer.h[0].attn.c_proj.weight.mul_(0.05)       # small heads: the linear regime
    lm = model_from_module(m, None)
    res = ablation_study(lm, extract_heads(lm), random_items(6, seed=2), None, ("zero",), "first")
    assert res.correlations()["zero"]["pooled"] > 0.99


def test_paper_lions_cows_test_runs_on_gpt2_layout():
    """The paper's test against independent answers: full HF forward passes (clean, and with the
    hook on for the whole model rather than the partial replay) and the corrected dL_theory."""
    import torch

    from spinsim.analysis.ablation import LIONS_COWS
    from spinsim.analysis.prompts import tokenize_items

    lm = loaded("gpt2")
    heads = extract_heads(lm)
    out = paper_ablation_test(lm, heads)
    assert set(out) == {"L3H5", "L0H0"}
    it = tokenize_items([LIONS_COWS], lm.encode)[0]
    a, b = it.correct_ids[0], it.wrong_ids[0]

    def first_token_gap() -> float:
        with torch.no_grad():
            logits = lm.model(torch.tensor([list(it.prompt_ids)])).logits[0, -1].double().numpy()
        return float(logits[a] - logits[b])

    clean = first_token_gap()
    theory = theory_gaps(run_forward(lm, [it]), heads, lm, GapMode.corrected().with_(candidates="first"))
    for label, (l, h) in (("L3H5", (3, 5)), ("L0H0", (0, 0))):
        v = out[label]
        assert v["clean_logit_gap"] == pytest.approx(clean, abs=1e-5)
        with ablate_heads(lm, [(l, h)], "zero"):
            ablated = first_token_gap()
        assert v["ablated_logit_gap"] == pytest.approx(ablated, abs=2e-5)
        assert v["shift"] == pytest.approx(ablated - clean, abs=2e-5)
        assert abs(v["shift"]) > 1e-3                                   # the heads matter in this model
        # zero ablation removes the head's direct contribution: predicted = -dL_theory(corrected, first)
        assert v["predicted_direct_shift"] == pytest.approx(-theory[0, l, h], rel=1e-4, abs=1e-6)
    with pytest.raises(ValueError, match="unknown ablation mode 'half'"):
        ablation_study(lm, extract_heads(lm), random_items(3), [(0, 0)], ("half",))
