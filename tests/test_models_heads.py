"""Head extraction: labels, layouts (GPT-2 Conv1D, Llama nn.Linear + GQA + rotary), spectra, and the
verification that attention recomputed from the extracted factors equals the model's own."""
from __future__ import annotations

import numpy as np
import pytest

from _tiny_models import SHARED_GPT2, loaded
from spinsim.models.attention import recompute_attention
from spinsim.models.capture import run_capture, verify_extraction
from spinsim.models.heads import (apply_rotary, classify_spectrum, extract_heads, head_label, parse_head, parse_heads,
                                  symmetric_spectrum)


def test_head_labels_round_trip_and_errors():
    assert head_label(3, 5) == "L3H5"
    assert parse_head("L3H5") == (3, 5)
    assert parse_head(head_label(29, 8), 30, 9) == (29, 8)
    with pytest.raises(ValueError, match="'L13H2' out of range"):
        parse_head("L13H2", n_layers=12, n_heads=12)
    with pytest.raises(ValueError, match="bad head label 'l3h5'"):
        parse_head("l3h5")
    assert parse_heads("all", 2, 3) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert parse_heads("L1H2, L0H0", 2, 3) == [(1, 2), (0, 0)]


def test_gpt2_layout_rows_and_paper_columns():
    lm = loaded("gpt2")
    c = lm.model.config
    d, H = c.n_embd, c.n_head
    dh = d // H
    hs, hp = extract_heads(lm, "correct"), extract_heads(lm, "paper")
    l, h = 2, 4
    Wa = lm.model.transformer.h[l].attn.c_attn.weight.detach().numpy()
    Wp = lm.model.transformer.h[l].attn.c_proj.weight.detach().numpy()
    hw = hs.head(l, h)
    np.testing.assert_array_equal(hw.W_Q, Wa[:, h * dh:(h + 1) * dh])
    np.testing.assert_array_equal(hw.W_K, Wa[:, d + h * dh:d + (h + 1) * dh])
    np.testing.assert_array_equal(hw.W_V, Wa[:, 2 * d + h * dh:2 * d + (h + 1) * dh])
    np.testing.assert_array_equal(hw.W_O, Wp[h * dh:(h + 1) * dh, :])          # rows: the real output map
    np.testing.assert_array_equal(hp.head(l, h).W_O, Wp[:, h * dh:(h + 1) * dh].T)  # the paper's columns
    assert hw.scale == pytest.approx(dh ** -0.5)
    assert hs.head("L2H4").label == "L2H4"


def test_llama_layout_gqa_and_paper_slice_refused():
    lm = loaded("llama")
    c = lm.model.config
    H, KV, dh = c.num_attention_heads, c.num_key_value_heads, c.hidden_size // c.num_attention_heads
    hs = extract_heads(lm)
    attn = lm.model.model.layers[1].self_attn
    q, k, o = (m.weight.detach().numpy() for m in (attn.q_proj, attn.k_proj, attn.o_proj))
    for h in range(H):
        kv = h // (H // KV)
        hw = hs.head(1, h)
        assert hw.kv_head == kv and hw.rotary
        np.testing.assert_array_equal(hw.W_Q, q[h * dh:(h + 1) * dh].T)
        np.testing.assert_array_equal(hw.W_K, k[kv * dh:(kv + 1) * dh].T)
        np.testing.assert_array_equal(hw.W_O, o[:, h * dh:(h + 1) * dh].T)
        np.testing.assert_array_equal(hw.b_K, attn.k_proj.bias.detach().numpy()[kv * dh:(kv + 1) * dh])
    with pytest.raises(ValueError, match="o_slice 'paper' is GPT-2 only"):
        extract_heads(lm, "paper")


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_attention_recomputed_from_factors_equals_model(kind):
    lm = loaded(kind)
    hs = extract_heads(lm)
    seqs = [lm.encode("The capital of France is Paris. The capital of Germany is"), lm.encode("A dog says woof.")]
    cap = run_capture(lm, seqs, attentions=True)
    assert verify_extraction(hs, cap) < 1e-5
    # and without the biases it does not match: the check has teeth
    assert np.max(np.abs(recompute_attention(hs, cap.x[0], biases=False) - cap.attn[0])) > 1e-3


def test_rotary_coupling_depends_on_offset_only():
    lm = loaded("llama")
    hw = extract_heads(lm).head(0, 3)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, hw.d_model))
    for i, j in ((5, 2), (9, 6), (3, 3), (4, 7)):
        q = apply_rotary((x @ hw.W_Q)[None], np.array([i]), hw.inv_freq)[0]
        k = apply_rotary((y @ hw.W_K)[None], np.array([j]), hw.inv_freq)[0]
        assert x @ hw.J(i - j) @ y == pytest.approx(hw.scale * q @ k, rel=1e-9, abs=1e-12)


def test_symmetric_spectrum_matches_dense():
    rng = np.random.default_rng(2)
    A, B = rng.normal(size=(2, 30, 4))
    Ms = 0.5 * (A @ B.T + B @ A.T)
    w, v = symmetric_spectrum(A, B)
    dense = np.sort(np.linalg.eigvalsh(Ms))[::-1]
    np.testing.assert_allclose(w, np.concatenate([dense[:4], dense[-4:]]), atol=1e-10)
    np.testing.assert_allclose(Ms @ v[:, 0], w[0] * v[:, 0], atol=1e-10)
    from spinsim.models.extract import spectra
    hs = extract_heads(loaded("llama"))
    sp = spectra(hs)
    for l, h in ((0, 0), (2, 3)):
        w, _ = symmetric_spectrum(*hs.head(l, h).coupling_factors())
        np.testing.assert_allclose(sp.eigenvalues[l, h], w, atol=1e-9 * np.abs(w).max())
        assert sp.frobenius[l, h] == pytest.approx(np.linalg.norm(hs.head(l, h).J()), rel=1e-10)
        assert sp.ferro_class[l, h] == classify_spectrum(w)[0]
    assert classify_spectrum(np.array([3.0, -1.0]))[0] == "ferro"
    assert classify_spectrum(np.array([1.0, -3.0]))[0] == "antiferro"
    assert classify_spectrum(np.array([2.0, 0.0]))[1] == pytest.approx(1.0)


def test_real_gpt2_small_attention_weights_match_readme():
    """The real GPT-2 small attention weights (../shared/gpt2-small) through the same code path."""
    if not (SHARED_GPT2 / "gpt2-small-attention.safetensors").is_file():
        pytest.skip(f"real GPT-2 small weights not present at {SHARED_GPT2} (CI has ../shared beside the repo)")
    from spinsim.models.loading import load_weights

    w = load_weights(SHARED_GPT2)
    assert w.family == "gpt2" and not w.has("wte.weight")
    hs = extract_heads(w)
    np.testing.assert_allclose(w.get("wpe.weight")[0, :3], [-0.018821, -0.197419, 0.004027], atol=1e-6)
    np.testing.assert_allclose(w.get("h.0.attn.c_attn.weight")[0, :4],
                               [-0.473848, -0.261366, -0.097804, -0.349889], atol=1e-6)
    np.testing.assert_allclose(w.get("h.0.attn.c_attn.bias")[:3], [0.480339, -0.525433, -0.429265], atol=1e-6)
    np.testing.assert_allclose(w.get("h.0.attn.c_proj.weight")[0, :3], [0.312718, -0.187413, 0.098025], atol=1e-6)
    ref = {(0, 0): (46.4226, 48.6799), (3, 5): (18.9586, 83.1239)}
    for (l, h), (j_norm, ov_norm) in ref.items():
        hw = hs.head(l, h)
        assert hw.scale == 0.125
        J = hw.J()
        assert np.linalg.norm(J) == pytest.approx(j_norm, abs=1e-4)
        assert np.linalg.norm(hw.OV()) == pytest.approx(ov_norm, abs=1e-4)
    s = np.linalg.svd(hs.head(0, 0).J(), compute_uv=False)
    assert s[0] == pytest.approx(8.3322, abs=1e-4)
    assert np.sum(s > 1e-6 * s[0]) == 64


@pytest.mark.slow
def test_smollm2_extraction_verified_against_output_attentions(smollm2):
    """Real SmolLM2-135M (GGUF, rotary, 9 query heads on 3 kv heads): extraction from the loaded
    model reproduces its attention probabilities (the GGUF loader's q/k permutation is undone)."""
    from spinsim.models.loading import ModelLoadError, load_model

    try:
        lm = load_model("smollm2-135m")
    except ModelLoadError as exc:
        pytest.skip(str(exc))
    hs = extract_heads(lm)
    assert (hs.n_layers, hs.n_heads, hs.n_kv_heads, hs.d_head) == (30, 9, 3, 64)
    ids = lm.encode("The capital of France is Paris. The capital of Germany is")
    cap = run_capture(lm, [ids], attentions=True)
    assert verify_extraction(hs, cap) < 1e-4
    assert lm.tokenizer.decode([int(np.argmax(cap.logits[0][-1]))]) == " Berlin"


def test_symmetric_share_against_dense(tmp_path):
    """||J_s||_F^2 / ||J||_F^2 from the factors equals the dense value; 1 for a symmetric J, 0 for an
    antisymmetric one; per head in the extraction file with units and long name."""
    import h5py

    from spinsim.models.extract import spectra, write_heads
    from spinsim.models.heads import symmetric_share

    rng = np.random.default_rng(5)
    A, B = rng.normal(size=(2, 30, 4))
    J = A @ B.T
    dense = np.linalg.norm(0.5 * (J + J.T)) ** 2 / np.linalg.norm(J) ** 2
    assert symmetric_share(A, B) == pytest.approx(dense, rel=1e-12)
    assert symmetric_share(A, A) == pytest.approx(1.0, rel=1e-12)
    assert symmetric_share(np.hstack([A, B]), np.hstack([B, -A])) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(symmetric_share(A, np.zeros_like(B)))
    hs = extract_heads(loaded("llama"))
    sp = spectra(hs)
    for l, h in ((0, 0), (2, 3)):
        J = hs.head(l, h).J()
        want = np.linalg.norm(0.5 * (J + J.T)) ** 2 / np.linalg.norm(J) ** 2
        assert sp.symmetric_share[l, h] == pytest.approx(want, rel=1e-9)
    assert 0.0 < sp.symmetric_share.min() and sp.symmetric_share.max() < 1.0
    out = tmp_path / "heads.h5"
    write_heads(out, hs, sp)
    with h5py.File(out, "r") as f:
        d = f["spectrum/symmetric_share"]
        np.testing.assert_allclose(d[()], sp.symmetric_share)
        assert d.attrs["units"] == "dimensionless" and "J_s = (J + J^T)/2" in d.attrs["long_name"]
        assert f["heads/L2H3"].attrs["symmetric_share"] == pytest.approx(sp.symmetric_share[2, 3])
