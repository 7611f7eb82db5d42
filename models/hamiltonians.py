"""A head and a prompt as a spinsim Hamiltonian (SPEC section 1).

    H(S) = - sum_{i != j} W_ij S_i^T M S_j - sum_i h_i . S_i ,    k_B = 1, T = 1 <-> the model.

* Sites: the prompt's tokens 0..N-1 (and optionally a probe site N, the next token). Site i's
  spin is its input vector ``S_i = x_i = m_i sigma_i`` with ``m_i = |x_i|`` (``embed``: the
  token embedding; ``embed+pos``: plus GPT-2's learned position; ``residual``: the normalised
  input the head sees in the model at that layer, from a forward pass).
* Graph: ``W_ij = 1`` for key j < query i (causal). Coupling ``M = A B^T`` with ``A = scale W_Q``,
  ``B = W_K`` (LowRank, never densified), so ``S_i^T M S_j`` is the bias-free attention score of
  query i on key j: at T = 1 the pair Boltzmann weight ``exp(S_i M S_j)`` is the attention weight's
  numerator.
* Biases (``biases='exact'``): ``score_ij = scale (x_i W_Q + b_Q).(x_j W_K + b_K)`` expands into
  ``x_i M x_j + x_i . a + x_j . b + c`` with ``a = scale W_Q b_K`` (query field),
  ``b = scale W_K b_Q`` (key field), ``c = scale b_Q . b_K``. Summed over the bonds: a field
  ``h_i += (sum_j W_ij) a + (sum_k W_ki) b`` on every site and an energy constant
  ``-c sum W`` (:attr:`HeadSystem.constant`). ``biases='drop'`` (the paper) leaves them out.
* The self term (query i on key i) is a single-site term, not a bond: W has a zero diagonal. For
  frozen sites it is a constant; for the probe it is :attr:`HeadSystem.self_score` (per candidate).
* Prompt field (``prompt_field = h``): ``h_i += h * x_i/|x_i|`` on every prompt site, pinning each
  spin to its own token; :attr:`HeadSystem.prompt_directions` holds those unit vectors (the
  field axis of a head's (T, h) phase diagram).
* Probe (``candidates=[...]``): site N is a :class:`~spinsim.Discrete` spin over the candidates'
  input vectors at position N (``residual``: captured from prompt + candidate), the prompt sites
  are frozen at their tokens (the quenched bath), and the probe's query bonds to every j < N carry
  the coupling, so ``E(c) = -sum_j c M x_j - h_N . c`` and ``log P_A/P_B = beta (E_B - E_A)``.
  ``context_field=True`` adds the head's context field N0 (the paper's mean field) to ``h_N``:
  with ``probe_bonds=False``, tied embeddings and ``embed`` inputs, ``E_B - E_A`` is then exactly
  the paper's dL_theory.

Rotary heads (Llama family, inputs other than ``embed``): the score of query i on key j is
``q_i R(i - j) k_j^T``, an offset-dependent coupling that one M cannot hold. Two exact/declared
treatments (``rotary=``):

* ``'fold'`` (default with a probe): only the probe (position N) is free, so every bond that
  matters has the probe as query. The rotation is folded into each key's vector: x_j is replaced
  by ``x_j' = x_j + k_j (R(j - N) - 1) W_K^+`` (W_K^+ the pseudo-inverse, k_j the key with bias),
  so that ``x_j' W_K + b_K = k_j R(j - N)`` and ``S_N M S_j'`` is the model's rotary score exactly.
  Bonds between frozen bath sites change, but they are constants.
* ``'drop'`` (default without a probe, every site free): the coupling at zero offset,
  ``J(0) = scale W_Q W_K^T`` (positions ignored: the ``embed`` picture). Recorded in the
  Hamiltonian's name and :attr:`HeadSystem.rotary`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from spinsim.hamiltonian import Discrete, Hamiltonian, Heisenberg, LowRank

from . import arch
from .heads import HeadSet, HeadWeights, apply_rotary, head_label, parse_head

__all__ = ["HeadSystem", "head_system", "head_hamiltonian", "site_vectors", "INPUT_MODES"]

INPUT_MODES = ("embed", "embed+pos", "residual")
_LM_CACHE: dict[str, Any] = {}


@dataclass
class HeadSystem:
    """A head Hamiltonian with what is needed to interpret it.

    H: the Hamiltonian; constant: energy offset from the biases (exact energy = H.energy(S) +
    constant); tokens (N,) prompt ids; X (N, d_model) prompt site vectors (after any rotary fold);
    prompt_directions (N + probe, d_model) unit vectors x_i/|x_i| (zero on the probe);
    query_bias, key_bias (d_model,) and bias_const: per-bond bias terms (zero if dropped);
    probe: site index or None; candidates (K,) token ids; self_score (K,) the probe's score on
    itself per candidate; rotary: 'none' | 'fold' | 'drop'; meta: provenance for HDF5 attributes.
    """

    H: Hamiltonian
    constant: float
    tokens: np.ndarray
    X: np.ndarray
    prompt_directions: np.ndarray
    query_bias: np.ndarray
    key_bias: np.ndarray
    bias_const: float
    rotary: str
    probe: int | None = None
    candidates: np.ndarray | None = None
    candidate_vectors: np.ndarray | None = None
    self_score: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def scores(self, S: np.ndarray | None = None) -> np.ndarray:
        """Full score matrix ``score_ij = S_i M S_j + S_i.a + S_j.b + c`` (n_sites, n_sites) of a
        configuration (default: the stored state), diagonal included (no causal mask)."""
        S = self.H.state if S is None else np.asarray(S, np.float64)
        G = self.H.pair_energy_matrix(S)
        return G + (S @ self.query_bias)[:, None] + (S @ self.key_bias)[None, :] + self.bias_const


def _get_lm(model: Any) -> Any:
    if not isinstance(model, str):
        return model
    if model not in _LM_CACHE:
        from .loading import load_model
        _LM_CACHE[model] = load_model(model)
    return _LM_CACHE[model]


_RESIDUAL_CACHE: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
_RESIDUAL_CACHE_SIZE = 32


def _residual_inputs(lm: Any, toks: np.ndarray) -> np.ndarray:
    """Every layer's normalised attention input (n_layers, T, d_model) for one token sequence,
    from one forward pass; the last few sequences per model are memoised (a study builds every
    head of every layer on the same prompt)."""
    key = (id(lm), tuple(int(t) for t in toks))
    if key not in _RESIDUAL_CACHE:
        from .capture import capture
        cap = capture(lm, [toks])
        if len(_RESIDUAL_CACHE) >= _RESIDUAL_CACHE_SIZE:
            _RESIDUAL_CACHE.pop(next(iter(_RESIDUAL_CACHE)))
        _RESIDUAL_CACHE[key] = np.stack([np.asarray(x, np.float64) for x in cap.x[0]])
    return _RESIDUAL_CACHE[key]


def site_vectors(lm: Any, layer: int, tokens: Sequence[int], input: str = "residual") -> np.ndarray:
    """Input vectors (T, d_model) float64 of the tokens at one layer (see module docstring)."""
    if input not in INPUT_MODES:
        raise ValueError(f"unknown input mode {input!r}; allowed: {', '.join(map(repr, INPUT_MODES))}")
    w = lm.weights
    toks = np.asarray(tokens, np.int64)
    if input == "residual":
        return _residual_inputs(lm, toks)[layer].copy()
    X = np.asarray(arch.embedding_matrix(w)[toks], np.float64)
    if input == "embed+pos" and w.family == "gpt2":
        X = X + np.asarray(arch.position_matrix(w)[: len(toks)], np.float64)
    return X


def _candidate_vectors(lm: Any, layer: int, tokens: np.ndarray, cands: np.ndarray, input: str) -> np.ndarray:
    w = lm.weights
    N = len(tokens)
    if input == "residual":
        from .capture import capture
        cap = capture(lm, [np.concatenate([tokens, [c]]) for c in cands])
        return np.stack([np.asarray(x[layer, N], np.float64) for x in cap.x])
    V = np.asarray(arch.embedding_matrix(w)[cands], np.float64)
    if input == "embed+pos" and w.family == "gpt2":
        V = V + np.asarray(arch.position_matrix(w)[N], np.float64)
    return V


def head_system(model: Any, head: str | tuple[int, int] | HeadWeights, prompt: str | Sequence[int], *,
                input: str = "residual", biases: str = "exact", prompt_field: float = 0.0,
                candidates: Sequence[str | int] | None = None, probe_bonds: bool = True,
                context_field: bool = False, rotary: str = "auto", heads: HeadSet | None = None) -> HeadSystem:
    """Build the SPEC section 1 system of one head on one prompt (see module docstring).

    model: a LoadedModel or a ``--model`` spec; head: ``'L3H5'``, (layer, head) or HeadWeights;
    prompt: text (tokenised without special tokens) or token ids; candidates: answer strings
    (their first token, with a leading space) or token ids.
    """
    from .heads import extract_heads

    lm = _get_lm(model)
    if biases not in ("exact", "drop"):
        raise ValueError(f"unknown biases {biases!r}; allowed: 'exact', 'drop'")
    if rotary not in ("auto", "fold", "drop"):
        raise ValueError(f"unknown rotary treatment {rotary!r}; allowed: 'auto', 'fold', 'drop'")
    if not np.isfinite(prompt_field):
        raise ValueError(f"prompt_field must be finite, got {prompt_field!r}")
    if isinstance(head, HeadWeights):
        hw = head
    else:
        hs = heads if heads is not None else extract_heads(lm)
        l, h = parse_head(head, hs.n_layers, hs.n_heads) if isinstance(head, str) else head
        hw = hs.head(l, h)
    tokens = np.asarray(lm.encode(prompt) if isinstance(prompt, str) else list(prompt), np.int64)
    if tokens.size < 1:
        raise ValueError(f"prompt {prompt!r} tokenises to nothing")
    X = site_vectors(lm, hw.layer, tokens, input)
    N, d = X.shape
    use_bias = biases == "exact"
    scale_eff = hw.scale * (hw.rotary_scaling ** 2 if hw.rotary else 1.0)
    A = scale_eff * hw.W_Q.astype(np.float64)
    B = hw.W_K.astype(np.float64)
    bQ = hw.b_Q.astype(np.float64) if use_bias else np.zeros(hw.d_head)
    bK = hw.b_K.astype(np.float64) if use_bias else np.zeros(hw.d_head)
    rot_active = hw.rotary and input != "embed"
    has_probe = candidates is not None
    if not rot_active:
        rot_mode = "none"
    elif rotary == "auto":
        rot_mode = "fold" if has_probe else "drop"
    else:
        rot_mode = rotary
    if rot_mode == "fold" and not has_probe:
        raise ValueError("rotary='fold' needs a probe (candidates): with every site free the offset-dependent "
                         "coupling cannot be folded; use rotary='drop'")

    cands = cand_vecs = self_score = None
    n_sites = N + (1 if has_probe else 0)
    if has_probe:
        ids = []
        for c in candidates:
            if isinstance(c, (int, np.integer)):
                ids.append(int(c))
            else:
                t = lm.encode(" " + str(c).strip())
                if not t:
                    raise ValueError(f"candidate {c!r} tokenises to nothing")
                ids.append(int(t[0]))
        if len(ids) < 1:
            raise ValueError("candidates must hold at least one token")
        cands = np.asarray(ids, np.int64)
        cand_vecs = _candidate_vectors(lm, hw.layer, tokens, cands, input)
        if rot_mode == "fold":
            # key j seen from query position N: k_j -> k_j R(j - N), folded into x_j
            k = X @ B + bK
            k_rot = apply_rotary(k, np.arange(N) - N, hw.inv_freq, 1.0)
            pinv = np.linalg.pinv(B)                                     # (d_head, d_model)
            X = X + (k_rot - k) @ pinv
        qc = cand_vecs @ hw.W_Q.astype(np.float64) + bQ
        kc = cand_vecs @ B + bK
        self_score = scale_eff * np.sum(qc * kc, axis=1)

    W = np.zeros((n_sites, n_sites))
    W[:N, :N] = np.tril(np.ones((N, N)), k=-1)
    if has_probe and probe_bonds:
        W[N, :N] = 1.0
    a = scale_eff * (hw.W_Q.astype(np.float64) @ bK)     # query field per bond (d_model,)
    b = scale_eff * (B @ bQ)                              # key field per bond
    c = float(scale_eff * bQ @ bK)
    hfield = np.zeros((n_sites, d))
    hfield += W.sum(1)[:, None] * a[None, :] + W.sum(0)[:, None] * b[None, :]
    constant = -c * float(W.sum())
    nrm = np.linalg.norm(X, axis=1)
    if np.any(nrm <= 0):
        raise ValueError(f"site {int(np.argmin(nrm))} has a zero input vector; spin lengths must be > 0")
    dirs = np.zeros((n_sites, d))
    dirs[:N] = X / nrm[:, None]
    hfield[:N] += float(prompt_field) * dirs[:N]
    if has_probe and context_field:
        from spinsim.analysis.gaps import context_field as _cf
        N0, _ = _cf(hw, site_vectors(lm, hw.layer, tokens, input), biases=use_bias, rotary=rot_active)
        hfield[N] += N0

    name = f"{lm.model_id}:{head_label(hw.layer, hw.head)}:{input}:biases={biases}:rotary={rot_mode}"
    if has_probe:
        state = np.zeros((n_sites, d))
        state[:N] = X
        state[N] = cand_vecs[0]
        lengths = np.ones(n_sites)
        lengths[:N] = nrm
        frozen = np.zeros(n_sites, bool)
        frozen[:N] = True
        spin = Discrete(cand_vecs, labels=tuple(str(lm.tokenizer.decode([int(t)])) if lm.tokenizer else str(t)
                                                for t in cands))
        H = Hamiltonian(W, LowRank(A, B), hfield, spin=spin, lengths=lengths, frozen=frozen, state=state,
                        name=name + ":probe")
    else:
        H = Hamiltonian(W, LowRank(A, B), hfield, spin=Heisenberg(d), lengths=nrm, state=X, name=name)
    meta = {"model_id": lm.model_id, "weights_sha256": lm.weights_sha256, "head": head_label(hw.layer, hw.head),
            "input_mode": input, "biases": biases, "rotary": rot_mode, "prompt_field": float(prompt_field),
            "n_prompt_tokens": int(N), "probe": bool(has_probe), "probe_bonds": bool(probe_bonds),
            "context_field": bool(context_field), "energy_constant": constant}
    H.prompt_directions = dirs  # type: ignore[attr-defined]  # the prompt-field axis (see module docstring)
    H.meta = meta  # type: ignore[attr-defined]
    return HeadSystem(H, constant, tokens, X, dirs, a, b, c, rot_mode, N if has_probe else None, cands,
                      cand_vecs, self_score, meta)


def head_hamiltonian(model: Any, head: str, prompt: str, **kw: Any) -> Hamiltonian:
    """The Hamiltonian of :func:`head_system` (what ``spinsim sweep --model`` solves).

    The returned H carries ``H.prompt_directions`` (n_sites, d_model), the unit vectors of the
    prompt field (the h axis of a head's phase diagram), and ``H.meta`` (provenance).
    """
    return head_system(model, head, prompt, **kw).H
