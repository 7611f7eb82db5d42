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
  ``-c sum W`` (``H.provenance["energy_constant"]``, :attr:`HeadSystem.constant`).
  ``biases='drop'`` (the paper) leaves them out. One helper (:func:`~spinsim.models.rope.bias_terms`)
  computes these for every input mode, the positional one of ``analysis.ground_study`` included.
* The self term (query i on key i) is a single-site term, not a bond: W has a zero diagonal. For
  frozen sites it is a constant; for the probe it is :attr:`HeadSystem.self_score` (per candidate).
* Prompt field (``prompt_field = h``): ``h_i += h * x_i/|x_i|`` on every prompt site, pinning each
  spin to its own token; H declares those unit vectors as its axis ``H.axes["prompt"]`` (the
  field axis of a head's (T, h) phase diagram; zero on the probe) and where it comes from as
  ``H.provenance`` (model id, weights hash, head, input mode, biases, rotary, ...).
* Probe (``candidates=[...]``): site N is a :class:`~spinsim.Discrete` spin over the candidates'
  input vectors at position N (``residual``: captured from prompt + candidate), the prompt sites
  are frozen at their tokens (the quenched bath), and the probe's query bonds to every j < N carry
  the coupling, so ``E(c) = -sum_j c M x_j - h_N . c`` and ``log P_A/P_B = beta (E_B - E_A)``.
  ``context_field=True`` adds the head's context field N0 (the paper's mean field) to ``h_N``:
  with ``probe_bonds=False``, tied embeddings and ``embed`` inputs, ``E_B - E_A`` is then exactly
  the paper's dL_theory.

Rotary heads (Llama family, inputs other than ``embed``): the score of query i on key j is
``(q_i R_i) . (k_j R_j)``, an offset-dependent coupling that one M cannot hold. Treatments
(``rotary=``, recorded in the Hamiltonian's name, ``H.provenance["rotary"]`` and
:attr:`HeadSystem.rotary`; :mod:`spinsim.models.rope` has the algebra):

* ``'exact'`` (default with every site free): per-site factors ``A_i = scale rot(W_Q, i)``,
  ``B_j = rot(W_K, j)`` (:class:`~spinsim.coupling.SiteLowRank`), so ``S_i^T A_i B_j^T S_j`` is
  the model's score of every pair at every offset; the biases become per-site fields (their
  rotated projections ``qb_i``, ``kb_j``, :attr:`HeadSystem.bias_projections`).
* ``'fold'`` (default with a probe): only the probe (position N) is free, so every bond that
  matters has the probe as query. The rotation is folded into each key's vector: x_j is replaced
  by ``x_j' = x_j + k_j (R(j - N) - 1) W_K^+`` (W_K^+ the pseudo-inverse, k_j the key with bias),
  so that ``x_j' W_K + b_K = k_j R(j - N)`` and ``S_N M S_j'`` is the model's rotary score exactly.
  Bonds between frozen bath sites change, but they are constants.
* ``'drop'`` (explicit only, never a default): the coupling at zero offset,
  ``J(0) = scale W_Q W_K^T`` (positions ignored: the ``embed`` picture).

Sliding windows (Mistral, Qwen2): ``W_ij = 0`` for ``i - j >= window``. Attention features a
Hamiltonian cannot hold (logit soft-capping, dynamic rope past the original maximum positions,
...) are refused in one line (:class:`~spinsim.models.rope.UnsupportedAttention`), and
:func:`head_system` checks the extracted heads against the model's own attention on the prompt
(:class:`~spinsim.models.capture.ExtractionMismatch` names the cause when they differ).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from spinsim.coupling import SiteLowRank
from spinsim.hamiltonian import Discrete, Hamiltonian, Heisenberg, LowRank

from . import arch
from .loading import check_context
from .heads import HeadSet, HeadWeights, apply_rotary, head_label, parse_head
from .answers import probe_tokens
from .attention import context_field as head_context_field, pattern
from .rope import bias_terms, causal_graph, check_attention, head_factors

__all__ = ["HeadSystem", "CandidateProbe", "build_head_system", "head_system", "head_hamiltonian",
           "site_vectors", "INPUT_MODES", "ROTARY_TREATMENTS"]

INPUT_MODES = ("embed", "embed+pos", "residual")
#: declared rotary treatments of a head system (module docstring)
ROTARY_TREATMENTS = ("none", "exact", "fold", "drop")
_TREATMENT = {"none": "no rotary positions (non-rotary head or raw embeddings)",
              "exact": "per-site rotary factors A_i = scale rot(W_Q, i), B_j = rot(W_K, j): every pair's score exact",
              "fold": "rotation relative to the probe folded into the key vectors: the probe's scores exact",
              "drop": "rotation dropped: offset-0 coupling scale W_Q W_K^T for every pair (positions ignored)"}
_LM_CACHE: dict[str, Any] = {}


@dataclass(frozen=True, eq=False)
class HeadSystem:
    """A head Hamiltonian with the head-level data needed to interpret it.

    H: the Hamiltonian (it declares its own ``axes["prompt"]`` and ``provenance``); tokens (N,)
    prompt ids (None for inputs without tokens, e.g. positions); X (N, d_model) prompt site
    vectors (after any rotary fold); query_bias, key_bias (d_model,) and bias_const: per-bond bias
    terms ``a``, ``b``, ``c`` (zero if dropped; NaN for rotary 'exact', where they depend on the
    pair's positions); rotary: 'none' | 'exact' | 'fold' | 'drop'; probe: site index or None;
    candidates (K,) token ids; candidate_vectors (K, d_model); self_score (K,) the probe's score
    on itself per candidate; bias_projections ``(qb, kb)`` (n_sites, d_head): the query and key
    biases in the factor space, so that ``score_ij = (Q_i + qb_i) . (P_j + kb_j)`` with
    ``Q_i = S_i A_i``, ``P_j = S_j B_j``.
    """

    H: Hamiltonian
    tokens: np.ndarray | None
    X: np.ndarray
    query_bias: np.ndarray
    key_bias: np.ndarray
    bias_const: float
    rotary: str
    probe: int | None = None
    candidates: np.ndarray | None = None
    candidate_vectors: np.ndarray | None = None
    self_score: np.ndarray | None = None
    bias_projections: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def constant(self) -> float:
        """Energy offset from the biases: exact energy = ``H.energy(S) + constant`` (energy units)."""
        return float(self.H.provenance["energy_constant"])

    def scores(self, S: np.ndarray | None = None) -> np.ndarray:
        """Full score matrix ``score_ij = (Q_i + qb_i) . (P_j + kb_j)`` (n_sites, n_sites) of a
        configuration (default: the stored state), diagonal included (no causal mask): the bond
        term ``S_i^T M_ij S_j`` plus the query/key bias terms (class docstring)."""
        S = self.H.state if S is None else np.asarray(S, np.float64)
        qb, kb = self.bias_projections
        if self.rotary == "exact":                      # SiteLowRank: per-site factors
            Q, P = self.H.M.projections(S)
        else:
            A, B = self.H.M.factors()
            Q, P = S @ A, S @ B
        return (Q + qb) @ (P + kb).T

    def attention(self, S: np.ndarray | None = None) -> np.ndarray:
        """Attention pattern (n_sites, n_sites) of a configuration at T = 1: row i is the softmax
        of :meth:`scores` over the keys i attends to (its bonds ``W_ij != 0`` and itself), zero
        elsewhere. For a free-site head system at its stored state this is the model's
        ``output_attentions`` of the head (query rows, key columns)."""
        G = self.scores(S)
        keys = np.asarray(self.H.W_dense) != 0
        np.fill_diagonal(keys, True)
        return pattern(np.where(keys, G, -np.inf))

@dataclass(frozen=True, eq=False)
class CandidateProbe:
    """The probe site N over K candidate tokens (see module docstring).

    candidates (K,) token ids; vectors (K, d_model) their input vectors at position N; labels (K,)
    decoded strings; bonds: the probe's query bonds to every prompt key j < N; field (d_model,)
    added to the probe's field (the head's context field N0), or None.
    """

    candidates: np.ndarray
    vectors: np.ndarray
    labels: tuple[str, ...]
    bonds: bool = True
    field: np.ndarray | None = None


def _get_lm(model: Any) -> Any:
    if not isinstance(model, str):
        return model
    if model not in _LM_CACHE:
        from .loading import load_model
        _LM_CACHE[model] = load_model(model)
    return _LM_CACHE[model]


_RESIDUAL_CACHE: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
_RESIDUAL_CACHE_SIZE = 32
_CHECKED: dict[tuple[int, tuple[int, ...]], float] = {}


def _residual_inputs(lm: Any, toks: np.ndarray, heads: HeadSet | None = None) -> np.ndarray:
    """Every layer's normalised attention input (n_layers, T, d_model) for one token sequence,
    from one forward pass; the last few sequences per model are memoised (a study builds every
    head of every layer on the same prompt). With ``heads``, the same pass checks the extracted
    heads against the model's own attention on these tokens (once per sequence;
    :func:`~spinsim.models.capture.check_extraction` raises ExtractionMismatch naming the cause)."""
    key = (id(lm), tuple(int(t) for t in toks))
    if key not in _RESIDUAL_CACHE or (heads is not None and key not in _CHECKED):
        from .capture import check_extraction, run_capture
        cap = run_capture(lm, [toks], attentions=heads is not None)
        if heads is not None:
            _CHECKED[key] = check_extraction(heads, cap)
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
    check_context(lm, len(toks))
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
        from .capture import run_capture
        cap = run_capture(lm, [np.concatenate([tokens, [c]]) for c in cands])
        return np.stack([np.asarray(x[layer, N], np.float64) for x in cap.x])
    V = np.asarray(arch.embedding_matrix(w)[cands], np.float64)
    check_context(lm, N + 1, "the prompt with its answer")
    if input == "embed+pos" and w.family == "gpt2":
        V = V + np.asarray(arch.position_matrix(w)[N], np.float64)
    return V


def _fold_rotary(hw: HeadWeights, X: np.ndarray, use_bias: bool) -> np.ndarray:
    """Fold the rotation seen from query position N = len(X) into the key vectors:
    ``x_j' = x_j + k_j (R(j - N) - 1) W_K^+`` so that ``x_j' W_K + b_K = k_j R(j - N)``."""
    B = hw.W_K.astype(np.float64)
    bK = hw.b_K.astype(np.float64) if use_bias else np.zeros(hw.d_head)
    N = X.shape[0]
    k = X @ B + bK
    k_rot = apply_rotary(k, np.arange(N) - N, hw.inv_freq, 1.0)
    return X + (k_rot - k) @ np.linalg.pinv(B)


def _positions(rotary: str, n_sites: int) -> np.ndarray | None:
    """Positions whose rotation each site's factors carry: every site its own ('exact'), all at
    0 ('drop', 'fold': the offset-0 coupling; fold's keys carry their rotation in X), or None."""
    if rotary == "exact":
        return np.arange(n_sites)
    return np.zeros(1, np.int64) if rotary in ("drop", "fold") else None


def build_head_system(hw: HeadWeights, X: np.ndarray, *, model_id: str, input: str,
                      weights_sha256: str = "", biases: str = "exact", prompt_field: float = 0.0,
                      rotary: str = "none", tokens: Sequence[int] | None = None,
                      probe: CandidateProbe | None = None,
                      provenance: Mapping[str, Any] | None = None) -> HeadSystem:
    """The one builder of a head's Hamiltonian from its site vectors (see module docstring).

    hw: the head (its ``window`` makes the graph); X (N, d_model): the prompt sites' input
    vectors at positions 0..N-1 (any input mode: ``input`` is recorded, not interpreted); biases
    'exact' | 'drop'; prompt_field: strength h of the field ``h x_i/|x_i|`` on every prompt site;
    rotary: the declared treatment, 'none' | 'exact' | 'drop' | 'fold' ('exact': per-site
    rotary factors, :class:`~spinsim.coupling.SiteLowRank`, every site free; 'fold' needs a
    probe and folds the rotation into X); probe: a candidate probe at site N (prompt sites then
    frozen at X); provenance: extra entries for ``H.provenance``.
    Raises ValueError for an unknown option, a zero input vector, 'fold' without a probe or
    'exact' with one, a rotary treatment of a non-rotary head.
    """
    if biases not in ("exact", "drop"):
        raise ValueError(f"unknown biases {biases!r}; allowed: 'exact', 'drop'")
    if rotary not in ROTARY_TREATMENTS:
        raise ValueError(f"unknown rotary treatment {rotary!r}; allowed: {', '.join(map(repr, ROTARY_TREATMENTS))}")
    if rotary != "none" and not hw.rotary:
        raise ValueError(f"rotary={rotary!r} for head {hw.label}, which has no rotary positions; use rotary='none'")
    if rotary == "fold" and probe is None:
        raise ValueError("rotary='fold' needs a probe (candidates): with every site free the offset-dependent "
                         "coupling cannot be folded; use rotary='exact' (per-site rotary factors)")
    if rotary == "exact" and probe is not None:
        raise ValueError("rotary='exact' is for free-site systems; a probe over candidates uses rotary='fold' "
                         "(exact for the probe's bonds, solvable by enumeration)")
    if not np.isfinite(prompt_field):
        raise ValueError(f"prompt_field must be finite, got {prompt_field!r}")
    use_bias = biases == "exact"
    X = np.asarray(X, np.float64)
    N, d = X.shape
    if rotary == "fold":
        X = _fold_rotary(hw, X, use_bias)
    nrm = np.linalg.norm(X, axis=1)
    if np.any(nrm <= 0):
        raise ValueError(f"site {int(np.argmin(nrm))} has a zero input vector; spin lengths must be > 0")
    n_sites = N + (probe is not None)
    W = causal_graph(n_sites, hw.window)
    if probe is not None and not probe.bonds:
        W[N, :] = 0.0
    A, B, qb, kb = head_factors(hw, _positions(rotary, n_sites), use_bias)
    hfield, constant = bias_terms(A, B, qb, kb, W)
    dirs = np.zeros((n_sites, d))
    dirs[:N] = X / nrm[:, None]
    hfield[:N] += float(prompt_field) * dirs[:N]
    M = SiteLowRank(A, B) if rotary == "exact" else LowRank(A[0], B[0])
    label = head_label(hw.layer, hw.head)
    name = f"{model_id}:{label}:{input}:biases={biases}:rotary={rotary}"
    prov = {"model_id": str(model_id), "weights_sha256": str(weights_sha256), "head": label,
            "input_mode": str(input), "biases": biases, "rotary": rotary, "rotary_treatment": _TREATMENT[rotary],
            "attention_window": int(hw.window or 0), "prompt_field": float(prompt_field),
            "n_prompt_tokens": int(N), "probe": probe is not None,
            "probe_bonds": bool(probe.bonds) if probe is not None else False,
            "context_field": probe is not None and probe.field is not None, "energy_constant": constant,
            **(provenance or {})}
    declared = dict(axes={"prompt": dirs}, provenance=prov)
    self_score = None
    if rotary == "exact":
        bias_proj = (qb, kb)
        a = b = np.full(d, np.nan)
        c = float("nan")
    else:
        bias_proj = (np.broadcast_to(qb, (n_sites, qb.shape[1])).copy(),
                     np.broadcast_to(kb, (n_sites, kb.shape[1])).copy())
        a, b, c = A[0] @ kb[0], B[0] @ qb[0], float(qb[0] @ kb[0])
    if probe is None:
        H = Hamiltonian(W, M, hfield, spin=Heisenberg(d), lengths=nrm, state=X, name=name, **declared)
    else:
        V = np.asarray(probe.vectors, np.float64)
        if probe.field is not None:
            hfield[N] += probe.field
        state = np.zeros((n_sites, d))
        state[:N] = X
        state[N] = V[0]
        lengths = np.ones(n_sites)
        lengths[:N] = nrm
        frozen = np.zeros(n_sites, bool)
        frozen[:N] = True
        H = Hamiltonian(W, M, hfield, spin=Discrete(V, labels=tuple(probe.labels)), lengths=lengths,
                        frozen=frozen, state=state, name=name + ":probe", **declared)
        self_score = np.sum((V @ A[0] + qb[0]) * (V @ B[0] + kb[0]), axis=1)
    return HeadSystem(H, None if tokens is None else np.asarray(tokens, np.int64), X, a, b, c, rotary,
                      N if probe is not None else None, None if probe is None else np.asarray(probe.candidates),
                      None if probe is None else np.asarray(probe.vectors, np.float64), self_score, bias_proj)


def head_system(model: Any, head: str | tuple[int, int] | HeadWeights, prompt: str | Sequence[int], *,
                input: str = "residual", biases: str = "exact", prompt_field: float = 0.0,
                candidates: Sequence[str | int] | None = None, probe_bonds: bool = True,
                context_field: bool = False, rotary: str = "auto", heads: HeadSet | None = None,
                first_differing: bool = False) -> HeadSystem:
    """Build the SPEC section 1 system of one head on one prompt (see module docstring).

    model: a LoadedModel or a ``--model`` spec; head: ``'L3H5'``, (layer, head) or HeadWeights;
    prompt: text (tokenised without special tokens) or token ids; candidates: answer strings or
    token ids. A string answer is tokenised together with the prompt
    (:func:`spinsim.models.answers.probe_tokens`): the probe chooses between the answers' first
    tokens, or with ``first_differing`` between their first differing tokens, the shared prefix
    then joining the bath after the prompt. rotary: 'auto' ('exact' with every site free, 'fold'
    with a probe; 'none' for non-rotary heads and raw embeddings), or an explicit 'exact' |
    'fold' | 'drop'. Reads the model (site vectors, candidates), checks the extracted heads
    against the model's own attention on the prompt, and hands the head algebra to
    :func:`build_head_system`. Raises :class:`~spinsim.models.answers.AnswerTokenizationError` (a
    ValueError) for a blank answer or two candidates with the same token, naming them;
    UnsupportedAttention (a feature the Hamiltonian cannot hold, named); ExtractionMismatch (the
    check failed; cause named); ValueError (bad options).
    """
    from .heads import extract_heads

    lm = _get_lm(model)
    if biases not in ("exact", "drop"):
        raise ValueError(f"unknown biases {biases!r}; allowed: 'exact', 'drop'")
    if rotary not in ("auto",) + ROTARY_TREATMENTS[1:]:
        raise ValueError(f"unknown rotary treatment {rotary!r}; allowed: 'auto', 'exact', 'fold', 'drop'")
    hs = heads if heads is not None else extract_heads(lm)
    if isinstance(head, HeadWeights):
        hw = head
    else:
        l, h = parse_head(head, hs.n_layers, hs.n_heads) if isinstance(head, str) else head
        hw = hs.head(l, h)
    tokens = np.asarray(lm.encode(prompt) if isinstance(prompt, str) else list(prompt), np.int64)
    if tokens.size < 1:
        raise ValueError(f"prompt {prompt!r} tokenises to nothing")
    cand_ids = None
    has_probe = candidates is not None
    if has_probe:
        decode = (lambda ids: str(lm.tokenizer.decode(list(ids)))) if lm.tokenizer is not None else None
        pt = probe_tokens(lm.encode, prompt if isinstance(prompt, str) else [int(t) for t in tokens],
                          list(candidates), first_differing=first_differing, decode=decode)
        tokens, cand_ids = np.asarray(pt.context, np.int64), np.asarray(pt.candidates, np.int64)
    check_attention(lm.weights.config, len(tokens) + has_probe)
    _residual_inputs(lm, tokens, hs)                   # the extraction checked on this prompt
    X = site_vectors(lm, hw.layer, tokens, input)
    rot_active = hw.rotary and input != "embed"
    if not rot_active:
        rot_mode = "none"
    elif rotary == "auto":
        rot_mode = "fold" if has_probe else "exact"
    else:
        rot_mode = rotary
    probe = None
    if has_probe:
        cands = cand_ids
        N0 = None
        if context_field:
            N0, _ = head_context_field(hw, X, biases=biases == "exact", rotary=rot_active)
        labels = tuple(str(lm.tokenizer.decode([int(t)])) if lm.tokenizer else str(t) for t in cands)
        probe = CandidateProbe(cands, _candidate_vectors(lm, hw.layer, tokens, cands, input), labels,
                               bonds=probe_bonds, field=N0)
    return build_head_system(hw, X, model_id=lm.model_id, weights_sha256=lm.weights_sha256, input=input,
                             biases=biases, prompt_field=prompt_field, rotary=rot_mode, tokens=tokens,
                             probe=probe)


def head_hamiltonian(model: Any, head: str, prompt: str, **kw: Any) -> Hamiltonian:
    """The Hamiltonian of :func:`head_system` (what ``spinsim sweep --model`` solves).

    The returned H declares ``H.axes["prompt"]`` (n_sites, d_model), the unit vectors of the
    prompt field (the h axis of a head's phase diagram), and ``H.provenance`` (model id, head,
    weights hash, input mode, ...).
    """
    return head_system(model, head, prompt, **kw).H
