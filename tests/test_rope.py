"""Exact rotary head systems against the model's own attention (HF ``output_attentions``): the
softmax over keys j <= i (within the window) of a free-site system's pair scores is the model's
attention of the head for every query row, on tiny random Llama-family models with grouped kv
heads, an explicit head_dim, linear / YaRN / llama3 rope scaling and a sliding window shorter
than the prompt; the refusals (dynamic rope past the maximum positions, soft-capping, partial
rotary transformers cannot run) by their message; and 'drop' as an explicit option only."""
from __future__ import annotations

import numpy as np
import pytest

from _tiny_models import _randomise, loaded
from spinsim.coupling import SiteLowRank
from spinsim.models.attention import Rotary, pattern, scores
from spinsim.models.capture import ExtractionMismatch, check_extraction, run_capture
from spinsim.models.hamiltonians import build_head_system, head_system
from spinsim.models.heads import HeadWeights, apply_rotary, extract_heads
from spinsim.models.loading import model_from_module
from spinsim.models.rope import UnsupportedAttention, attention_window, causal_graph, check_attention

TOL = 1e-5
IDS = [5, 17, 3, 99, 42, 7, 250, 11, 60, 3, 8, 200, 31, 77]          # 14 tokens


def _tiny(kind: str = "llama", seed: int = 4, **cfg_kw):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    base = dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_size=32,
                intermediate_size=64, vocab_size=320, max_position_embeddings=64, rope_theta=50.0,
                tie_word_embeddings=False, attn_implementation="eager")
    base.update(cfg_kw)
    if kind == "mistral":
        m = MistralForCausalLM(MistralConfig(**base))
    else:
        m = LlamaForCausalLM(LlamaConfig(attention_bias=True, **base))
    _randomise(m, seed)
    return model_from_module(m.eval(), None, model_id=f"tiny-{kind}")


def _attention_mismatch(lm, ids, rotary: str = "auto") -> tuple[float, str]:
    """Largest |system attention - model attention| over every head and query row, and where it
    is (head, row, column, both values, the model's attention implementation and window)."""
    heads = extract_heads(lm)
    cap = run_capture(lm, [ids], attentions=True)
    T = len(ids)
    uniform = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
    assert np.max(np.abs(cap.attn[0] - uniform)) > 0.1                  # far from uniform: the check has teeth
    err, where = 0.0, ""
    for l in range(heads.n_layers):
        for h in range(heads.n_heads):
            a = head_system(lm, (l, h), ids, heads=heads, rotary=rotary).attention()
            d = np.abs(a - cap.attn[0][l, h])
            if d.max() > err:
                i, j = np.unravel_index(int(np.argmax(d)), d.shape)
                cfg = lm.model.config
                err = float(d.max())
                where = (f"L{l}H{h} row {i} column {j}: system {a[i, j]:.6f}, model {cap.attn[0][l, h][i, j]:.6f} "
                         f"(attn_implementation={getattr(cfg, '_attn_implementation', None)!r}, "
                         f"sliding_window={getattr(cfg, 'sliding_window', None)!r}, model row {np.round(cap.attn[0][l, h][i], 4)})")
    return err, where


def _max_attention_error(lm, ids, rotary: str = "auto") -> float:
    return _attention_mismatch(lm, ids, rotary)[0]


ROPES = {"linear": {"rope_type": "linear", "factor": 2.0},
         "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16},
         "llama3": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 8}}


@pytest.mark.parametrize("rope", sorted(ROPES))
def test_exact_rotary_scaled_rope(rope):
    lm = _tiny(rope_scaling=ROPES[rope])
    heads = extract_heads(lm)
    if rope == "yarn":
        assert heads.rotary_scaling > 1.05                              # the attention factor is exercised
    sysm = head_system(lm, "L1H3", IDS, heads=heads)
    assert sysm.rotary == "exact" and isinstance(sysm.H.M, SiteLowRank)
    assert _max_attention_error(lm, IDS) < TOL


@pytest.mark.parametrize("kind", ["llama", "llama_head_dim"])
def test_exact_rotary_grouped_heads_and_head_dim(kind):
    """Grouped kv heads (4 query heads on 2 kv heads) with q/k/v biases, and an explicit head_dim."""
    lm = loaded(kind)
    ids = lm.encode("The capital of France is Paris. The capital of Germany is")
    heads = extract_heads(lm)
    assert heads.n_kv_heads < heads.n_heads
    assert _max_attention_error(lm, ids) < TOL


def test_sliding_window_is_the_graph():
    """Mistral with a window of 4 on a 14-token prompt: W_ij = 0 for i - j >= 4, and the system's
    attention is the model's; the full causal graph would not be."""
    lm = _tiny("mistral", sliding_window=4)
    heads = extract_heads(lm)
    assert attention_window(lm.weights.config, 1) == 4 and heads.layer_window(1) == 4
    sysm = head_system(lm, "L1H0", IDS, heads=heads)
    W = sysm.H.W_dense
    i, j = np.indices(W.shape)
    np.testing.assert_array_equal(W, ((j < i) & (i - j < 4)).astype(float))
    assert sysm.H.provenance["attention_window"] == 4
    err, where = _attention_mismatch(lm, IDS)
    assert err < TOL, where
    cap = run_capture(lm, [IDS], attentions=True)
    s = sysm.scores()
    full = pattern(np.where(np.tril(np.ones_like(s, bool)), s, -np.inf))   # the window ignored
    assert np.max(np.abs(full - cap.attn[0][1, 0])) > 0.05
    # a Qwen2-style config: only the 'sliding_attention' layers have a window
    cfg = {"sliding_window": 3, "use_sliding_window": True, "layer_types": ["full_attention", "sliding_attention"]}
    assert attention_window(cfg, 0) is None and attention_window(cfg, 1) == 3
    assert attention_window(dict(cfg, use_sliding_window=False), 1) is None
    np.testing.assert_array_equal(causal_graph(4, 2), np.eye(4, k=-1))


def test_partial_rotary_matches_transformers_rotate_half():
    """apply_rotary with frequencies for 4 of 8 components equals transformers' own partial rotary
    (GPT-NeoX ``apply_rotary_pos_emb``: the first rotary_dim components turned, the rest passed)."""
    import torch
    from transformers.models.gpt_neox.modeling_gpt_neox import apply_rotary_pos_emb

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 1, 6, 8))
    inv = np.array([1.0, 0.3])
    pos = np.arange(6)
    emb = np.concatenate([pos[:, None] * inv, pos[:, None] * inv], axis=1)[None]   # (1, T, 4)
    q, _ = apply_rotary_pos_emb(torch.tensor(x), torch.tensor(x), torch.tensor(np.cos(emb)),
                                torch.tensor(np.sin(emb)))
    np.testing.assert_allclose(apply_rotary(x, pos, inv), q.numpy(), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="rotary frequencies cover 10 components but the head has 8"):
        apply_rotary(x, pos, np.ones(5))


def test_partial_rotary_head_system_scores():
    """A partial-rotary head with biases and attention scaling: the exact system's scores are the
    scores of the one attention implementation (models.attention, HF-checked) for every pair."""
    rng = np.random.default_rng(1)
    d, dh, T = 10, 6, 9
    hw = HeadWeights(0, 0, rng.normal(size=(d, dh)), rng.normal(size=(d, dh)), rng.normal(size=(d, dh)),
                     rng.normal(size=(dh, d)), rng.normal(size=dh), rng.normal(size=dh), np.zeros(dh), 0.4,
                     True, 0, inv_freq=np.array([0.9, 0.2]), rotary_scaling=1.2)
    X = rng.normal(size=(T, d))
    sysm = build_head_system(hw, X, model_id="synthetic", input="residual", rotary="exact")
    want = scores(X, hw.W_Q, hw.W_K, hw.scale, b_Q=hw.b_Q, b_K=hw.b_K, rotary=Rotary.of(hw))
    low = np.tril_indices(T)
    np.testing.assert_allclose(sysm.scores()[low], want[low], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sysm.attention(), pattern(want), rtol=1e-10, atol=1e-12)
    # energy: minus the bond scores (j < i), bias fields and constant included
    assert sysm.H.energy(X) + sysm.constant == pytest.approx(-np.sum(np.tril(want, -1)), rel=1e-10)
    # J(offset) of the head is the pair coupling at that offset (rotated and passed components)
    i, j = 7, 3
    Q, P = sysm.H.M.projections(X)
    assert X[i] @ hw.J(i - j) @ X[j] == pytest.approx(Q[i] @ P[j], rel=1e-10)


def test_drop_is_explicit_only():
    """Every site free, no rotary argument: the exact coupling, never the offset-0 one. 'drop'
    stays as an explicit option, declared, and is not the model's attention."""
    lm = loaded("llama")
    ids = lm.encode("The capital of France is Paris. The capital of Germany is")
    sysm = head_system(lm, "L1H2", ids)
    assert sysm.rotary == "exact" and sysm.H.provenance["rotary"] == "exact"
    drop = head_system(lm, "L1H2", ids, rotary="drop")
    assert drop.rotary == "drop" and "rotary=drop" in drop.H.name
    assert "offset-0" in drop.H.provenance["rotary_treatment"]
    assert _max_attention_error(lm, ids, rotary="drop") > 1e-2           # the position-blind variant
    with pytest.raises(ValueError, match="unknown rotary treatment 'zero'"):
        head_system(lm, "L1H2", ids, rotary="zero")
    with pytest.raises(ValueError, match="rotary='exact' is for free-site systems"):
        head_system(lm, "L1H2", ids, rotary="exact", candidates=[5, 6])


def test_dynamic_rope_refused_past_max_positions():
    lm = _tiny(max_position_embeddings=8, rope_scaling={"rope_type": "dynamic", "factor": 2.0})
    with pytest.raises(UnsupportedAttention, match=r"^the model's attention has rope_type 'dynamic' past 8 "
                                                   r"positions \(the prompt has 14 tokens\)"):
        head_system(lm, "L0H0", IDS)
    assert _max_attention_error(lm, IDS[:8]) < TOL                     # within the original positions: exact


def test_unsupported_features_refused_in_one_line():
    lm = _tiny(attn_logit_softcapping=20.0)
    with pytest.raises(UnsupportedAttention) as exc:
        head_system(lm, "L0H0", IDS)
    msg = str(exc.value)
    assert "\n" not in msg and "attention logit soft-capping (attn_logit_softcapping=20.0)" in msg
    with pytest.raises(UnsupportedAttention, match="partial_rotary_factor 0.5 with rope_type 'linear'"):
        check_attention({"model_type": "llama", "rope_parameters": {"rope_type": "linear", "factor": 2.0,
                                                                    "partial_rotary_factor": 0.5}})
    with pytest.raises(UnsupportedAttention, match="ALiBi"):
        check_attention({"model_type": "llama", "alibi": True})
    with pytest.raises(UnsupportedAttention, match="rope_type 'mrope'"):
        check_attention({"model_type": "llama", "rope_scaling": {"rope_type": "mrope"}})
    check_attention({"model_type": "llama", "rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, 10 ** 6)


def test_extraction_mismatch_names_the_cause():
    """Heads extracted without the window of a windowed model: the check fails naming where; a
    model whose attention has a refused feature gets that feature named."""
    lm = _tiny("mistral", sliding_window=4)
    heads = extract_heads(lm)
    cap = run_capture(lm, [IDS], attentions=True)
    assert check_extraction(heads, cap) < TOL
    heads.window = np.zeros(heads.n_layers, np.int64)                    # the window forgotten
    with pytest.raises(ExtractionMismatch, match=r"differs from the model's by .* at L\dH\d, query \d+ of a "
                                                 r"14-token prompt: no known cause"):
        check_extraction(heads, cap)
    heads.config = dict(heads.config, attn_logit_softcapping=5.0)
    with pytest.raises(ExtractionMismatch, match="attention logit soft-capping"):
        check_extraction(heads, cap)


PROMPT40 = ("In the quiet village by the river, an old baker rose before dawn every day to knead the dough, "
            "light the oven and sell warm bread to the families who lived along the narrow stone streets of")


@pytest.mark.slow
def test_smollm2_heads_exact(smollm2):
    """SmolLM2-135M (the embedded GGUF model): L0H0, L3H5, L15H2, L29H8 on the paper's prompt and a
    40-token prompt reproduce the model's attention for every query row; 'drop' does not."""
    from spinsim.models.loading import ModelLoadError, load_model

    try:
        lm = load_model("smollm2-135m")
    except ModelLoadError as exc:
        pytest.skip(str(exc))
    heads = extract_heads(lm)
    prompts = ["The capital of France is Paris. The capital of Germany is", PROMPT40]
    worst_drop = 0.0
    for text in prompts:
        ids = lm.encode(text)
        if text is PROMPT40:
            assert len(ids) == 40
        cap = run_capture(lm, [ids], attentions=True)
        for label in ("L0H0", "L3H5", "L15H2", "L29H8"):
            l, h = int(label[1:label.index("H")]), int(label[label.index("H") + 1:])
            sysm = head_system(lm, label, ids, heads=heads)
            assert sysm.rotary == "exact"
            assert np.max(np.abs(sysm.attention() - cap.attn[0][l, h])) < TOL, (text, label)
            drop = head_system(lm, label, ids, heads=heads, rotary="drop")
            worst_drop = max(worst_drop, float(np.max(np.abs(drop.attention() - cap.attn[0][l, h]))))
    assert worst_drop > 0.1                                 # the position-blind variant is far off


def test_cli_extract_names_the_cause(tmp_path, capsys):
    """`spinsim extract` on a model whose attention the heads cannot hold on the check prompt: exit
    1 with one line naming the feature; a sliding-window model passes (the window is modelled)."""
    from _tiny_models import _save
    from spinsim.cli import main

    dyn = _save(_tiny(max_position_embeddings=8, rope_scaling={"rope_type": "dynamic", "factor": 2.0}).model,
                "dynamic_rope")
    capsys.readouterr()
    assert main(["extract", "--model", str(dyn), "--out", str(tmp_path / "d.h5")]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]   # (progress bars aside)
    assert len(err) == 1 and "rope_type 'dynamic' past 8 positions" in err[0]
    win = _save(_tiny("mistral", sliding_window=4).model, "windowed")
    assert main(["extract", "--model", str(win), "--out", str(tmp_path / "w.h5")]) == 0
    import h5py

    from _h5layout import layout_problems
    assert layout_problems(tmp_path / "w.h5") == []
    with h5py.File(tmp_path / "w.h5") as f:
        np.testing.assert_array_equal(f["attention_window"][()], [4, 4])
        assert f["attention_window"].attrs["units"] == "positions" and f.attrs["verify_max_abs_err"] < TOL


def _rotary_like_coupling(rng, N: int, n: int, r: int) -> SiteLowRank:
    """Per-site factors A_k = A R_k, B_k = B R_k (R_k a rotation of the rank space by angle 0.7 k):
    a rotary head's structure, span(A_k) = span(A) for every site."""
    A, B = rng.normal(size=(2, n, r))
    th = 0.7 * np.arange(N)
    R = np.zeros((N, r, r))
    R[:, 0, 0] = R[:, 1, 1] = np.cos(th)
    R[:, 0, 1], R[:, 1, 0] = -np.sin(th), np.sin(th)
    R[:, 2:, 2:] = np.eye(r - 2)
    return SiteLowRank(np.einsum("nr,krs->kns", A, R), np.einsum("nr,krs->kns", B, R))


@pytest.mark.parametrize("method", ["dense", "eigsh"])
def test_excitations_of_a_site_dependent_coupling(method):
    """The tangent-space Hessian of a SiteLowRank system (reduced to the span of all sites' factors,
    flat modes analytic) has the spectrum of K built densely from its definition,
    K_kk = m_k phi_k.sigma_k 1, K_kl = -m_k m_l P_k (W_kl M_kl + W_lk M_lk^T) P_l."""
    from spinsim.excitations import excitations
    from spinsim.hamiltonian import Hamiltonian, Heisenberg

    rng = np.random.default_rng(3)
    N, n, r = 5, 9, 3
    M = _rotary_like_coupling(rng, N, n, r)
    W = causal_graph(N) * rng.uniform(0.5, 1.5, (N, N))
    m = rng.uniform(0.5, 2.0, N)
    S = rng.normal(size=(N, n))
    S *= (m / np.linalg.norm(S, axis=1))[:, None]
    H = Hamiltonian(W, M, rng.normal(size=(N, n)), spin=Heisenberg(n), lengths=m)
    phi = H.local_fields(S)
    sig = S / m[:, None]
    T = [np.linalg.svd(np.eye(n) - np.outer(s, s))[0][:, : n - 1] for s in sig]   # orthonormal tangent bases
    K = np.zeros((N * (n - 1), N * (n - 1)))
    blk = lambda k: slice(k * (n - 1), (k + 1) * (n - 1))                          # noqa: E731
    for k in range(N):
        K[blk(k), blk(k)] = m[k] * (phi[k] @ sig[k]) * np.eye(n - 1)
        for l in range(N):
            if l != k:
                Mkl = M.A[k] @ M.B[l].T
                Mlk = M.A[l] @ M.B[k].T
                K[blk(k), blk(l)] = -m[k] * m[l] * T[k].T @ (W[k, l] * Mkl + W[l, k] * Mlk.T) @ T[l]
    want = np.linalg.eigvalsh(K)
    n_modes = 6 if method == "eigsh" else want.size
    ex = excitations(H, S, n_modes=n_modes, method=method)
    assert ex.flat_multiplicity == n - 1 - 2 * r and ex.n_reduced == N * 2 * r     # reduced: span(A, B) has 2r dims
    np.testing.assert_allclose(ex.eigenvalues, want[:n_modes], rtol=1e-8, atol=1e-8 * np.abs(want).max())


def test_gaps_forward_checks_the_heads():
    """`gaps` (analysis.gaps.run_forward with the heads): a sliding-window model passes (the window
    is in the one attention implementation), heads without it fail naming where, and dynamic rope
    past the maximum positions is refused before the forward pass."""
    from _tiny_models import random_items
    from spinsim.analysis.gaps import run_forward

    items = random_items(6, seed=3)
    lm = _tiny("mistral", sliding_window=3)
    heads = extract_heads(lm)
    study = run_forward(lm, items, residual=False, heads=heads)
    assert study.cap.attn is None and study.cap.x == []
    heads.window = np.zeros(heads.n_layers, np.int64)
    with pytest.raises(ExtractionMismatch, match="differs from the model's"):
        run_forward(lm, items, heads=heads)
    dyn = _tiny(max_position_embeddings=8, rope_scaling={"rope_type": "dynamic", "factor": 2.0})
    with pytest.raises(UnsupportedAttention, match="rope_type 'dynamic' past 8 positions"):
        run_forward(dyn, items, heads=extract_heads(dyn))


def test_mean_field_of_a_site_dependent_coupling():
    """Mean field of a SiteLowRank H: T_c = (1/n) lambda_max of K = W' (x) M_ij + W'^T (x) M_ji^T
    built densely pair by pair, and the uniform state along the top eigenvector of the bond-weighted
    mean M_s has H.energy = -bond_sum u^T M_s u and is the best uniform state (vs random u)."""
    from spinsim.hamiltonian import Hamiltonian, Heisenberg
    from spinsim.solvers.mean_field import mean_field

    rng = np.random.default_rng(7)
    N, n, r = 4, 5, 2
    M = _rotary_like_coupling(rng, N, n, r)
    W = causal_graph(N)
    m = rng.uniform(0.5, 1.5, N)
    H = Hamiltonian(W, M, np.zeros((N, n)), spin=Heisenberg(n), lengths=m)
    mf = mean_field(H)
    Wp = W * np.outer(m, m)
    K = np.zeros((N * n, N * n))
    for i in range(N):
        for j in range(N):
            K[i * n:(i + 1) * n, j * n:(j + 1) * n] = Wp[i, j] * (M.A[i] @ M.B[j].T) + Wp[j, i] * (M.A[j] @ M.B[i].T).T
    assert mf.T_c == pytest.approx(np.linalg.eigvalsh(K)[-1] / n, rel=1e-10)
    u = mf.ferro_direction
    assert mf.ferro_energy == pytest.approx(-mf.bond_sum * mf.eigenvalues[0], rel=1e-10)
    assert mf.ferro_energy == pytest.approx(H.energy(m[:, None] * u[None, :]), rel=1e-12)
    for v in rng.normal(size=(50, n)):
        v /= np.linalg.norm(v)
        assert H.energy(m[:, None] * v[None, :]) >= mf.ferro_energy - 1e-12


def test_cli_sweep_of_a_rotary_head(tmp_path, capsys):
    """`spinsim sweep --model` on a rotary head: the exact per-site coupling by default, 'drop' only
    when asked, the treatment recorded in the file."""
    from _tiny_models import llama_dir
    from spinsim.cli import main
    from spinsim.phase import read_sweep

    base = ["sweep", "--model", str(llama_dir()), "--head", "L1H2", "--prompt", "A dog says woof.", "--T", "0.5:2:2",
            "--field", "0:1:2", "--sweeps", "40", "--no-progress"]
    for rot in (None, "drop"):
        out = tmp_path / f"{rot}.h5"
        assert main(base + (["--rotary", rot] if rot else []) + ["--out", str(out)]) == 0, capsys.readouterr().err
        sw = read_sweep(out)
        assert sw.complete and sw.attrs["rotary"] == (rot or "exact") and np.isfinite(sw.energy).all()
