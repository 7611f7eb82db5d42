"""models.attention against the model's own attention (HF ``output_attentions`` and the head
outputs entering the output projection) on the tiny random GPT-2 and Llama (rotary, grouped kv,
q/k/v biases, and one with an explicit head_dim): an independent answer, not the code compared with itself."""
from __future__ import annotations

import numpy as np
import pytest

from _tiny_models import loaded
from spinsim.models.attention import context_field, layer_outputs, pattern, recompute_attention, scores
from spinsim.models.capture import run_capture
from spinsim.models.heads import extract_heads

PROMPTS = ("The capital of France is Paris. The capital of Germany is", "A dog says woof.")


@pytest.fixture(scope="module", params=["gpt2", "llama", "llama_head_dim"])
def captured(request):
    lm = loaded(request.param)
    heads = extract_heads(lm)
    if request.param == "llama_head_dim":       # head_dim differs from hidden_size / n_heads
        assert heads.d_head == 12 and heads.d_head * heads.n_heads != heads.W_Q.shape[-2]
    cap = run_capture(lm, [lm.encode(p) for p in PROMPTS], attentions=True, head_outputs=True)
    return lm, heads, cap


def test_pattern_equals_output_attentions(captured):
    _, heads, cap = captured
    for x, attn in zip(cap.x, cap.attn):
        np.testing.assert_allclose(recompute_attention(heads, x), attn, atol=2e-6)
        T = x.shape[1]
        uniform = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
        assert np.max(np.abs(attn - uniform)) > 0.1         # far from uniform: the comparison has teeth
    # dropping the biases changes the pattern: every term of the score is exercised
    assert np.max(np.abs(recompute_attention(heads, cap.x[0], biases=False) - cap.attn[0])) > 1e-3


def test_head_outputs_equal_the_models_z(captured):
    """z of every head at every position equals what the model feeds its output projection."""
    _, heads, cap = captured
    dh = heads.d_head
    for x, z_model in zip(cap.x, cap.z):
        for l in range(heads.n_layers):
            z = layer_outputs(heads, x[l], l)                             # (n_heads, T, d_head)
            want = z_model[l].reshape(z_model.shape[1], heads.n_heads, dh).transpose(1, 0, 2)
            np.testing.assert_allclose(z, want, atol=2e-5, rtol=1e-4)


def test_query_subset_and_context_field(captured):
    _, heads, cap = captured
    x = cap.x[0]
    T = x.shape[1]
    l, h = heads.n_layers - 1, 1
    rows = np.array([2, T - 1])
    full = layer_outputs(heads, x[l], l)
    np.testing.assert_allclose(layer_outputs(heads, x[l], l, rows), full[:, rows], rtol=1e-12, atol=1e-12)
    hw = heads.head(l, h)
    N0, alpha = context_field(hw, x[l], t=4, biases=True)
    np.testing.assert_allclose(alpha, cap.attn[0][l, h, 4, :5], atol=2e-6)
    dh = heads.d_head
    np.testing.assert_allclose(N0, cap.z[0][l, 4, h * dh:(h + 1) * dh] @ hw.W_O.astype(np.float64),
                               atol=2e-5, rtol=1e-4)


def test_scores_are_causal_and_check_positions():
    rng = np.random.default_rng(0)
    X, WQ, WK = rng.normal(size=(5, 4)), rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    s = scores(X, WQ, WK, 0.5)
    assert np.isneginf(s[np.triu_indices(5, 1)]).all() and np.isfinite(s[np.tril_indices(5)]).all()
    assert s[3, 1] == pytest.approx(0.5 * (X[3] @ WQ) @ (X[1] @ WK), rel=1e-12)
    p = pattern(s)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-12)
    assert p[0, 0] == 1.0
    with pytest.raises(ValueError, match=r"query positions must be in 0..4, got \[5\]"):
        scores(X, WQ, WK, 0.5, queries=[5])


def test_gpt2_scale_by_inverse_layer_idx():
    """GPT-2's ``scale_attn_by_inverse_layer_idx`` (score / (layer + 1)) against HF output_attentions."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from _tiny_models import _randomise
    from spinsim.models.loading import model_from_module

    torch.manual_seed(3)
    cfg = GPT2Config(n_layer=3, n_head=2, n_embd=16, vocab_size=320, n_positions=32, bos_token_id=0,
                     eos_token_id=0, attn_implementation="eager", scale_attn_by_inverse_layer_idx=True)
    m = GPT2LMHeadModel(cfg)
    _randomise(m, 3)
    lm = model_from_module(m.eval(), None)
    heads = extract_heads(lm)
    np.testing.assert_allclose(heads.scale, 1 / np.sqrt(8) / np.arange(1, 4), rtol=1e-12)
    cap = run_capture(lm, [[5, 17, 3, 99, 42, 7]], attentions=True)
    np.testing.assert_allclose(recompute_attention(heads, cap.x[0]), cap.attn[0], atol=2e-6)


def test_capture_refuses_logit_positions_outside_their_sequence():
    """A position past a short sequence's end (inside the batch's padding) is refused, not read."""
    lm = loaded("gpt2")
    seqs = [[5, 17, 3], [5, 17, 3, 99, 42, 7, 250, 11]]
    with pytest.raises(ValueError, match=r"logit_positions\[0\] = \[5\] must lie in 0..2 \(sequence 0 has 3"):
        run_capture(lm, seqs, logit_positions=[[5], [7]])
    with pytest.raises(ValueError, match="logit_positions holds 1 lists for 2 sequences"):
        run_capture(lm, seqs, logit_positions=[[2]])
    ok = run_capture(lm, seqs, logit_positions=[[0, 2], [7]])
    alone = run_capture(lm, [seqs[0]], logit_positions=[[0, 2]])
    np.testing.assert_allclose(ok.logits[0], alone.logits[0], atol=1e-4)   # batching is invisible


def test_llama_yarn_rope_attention_scaling():
    """A Llama with YaRN rope (HF attention_scaling != 1, scaled inv_freq) against HF output_attentions."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from _tiny_models import _randomise
    from spinsim.models.loading import model_from_module

    torch.manual_seed(4)
    cfg = LlamaConfig(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_size=32,
                      intermediate_size=64, vocab_size=320, max_position_embeddings=64, attention_bias=True,
                      rope_theta=50.0, tie_word_embeddings=False, attn_implementation="eager",
                      rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16})
    m2 = LlamaForCausalLM(cfg)
    _randomise(m2, 4)
    lm = model_from_module(m2.eval(), None)
    heads = extract_heads(lm)
    assert heads.rotary_scaling > 1.05                                  # 0.1 ln(4) + 1 = 1.139
    cap = run_capture(lm, [[5, 17, 3, 99, 42, 7, 250, 11, 60, 3, 8, 200]], attentions=True)
    np.testing.assert_allclose(recompute_attention(heads, cap.x[0]), cap.attn[0], atol=2e-6)
