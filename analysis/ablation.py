"""Head ablations: does removing a head move the model's logit gap the way the head's direct
contribution says it should?

* The hook: a forward pre-hook on the attention output projection (GPT-2 ``attn.c_proj``, Llama
  ``self_attn.o_proj``) rewrites head h's slice ``h*d_head:(h+1)*d_head`` of its input z (the
  heads' outputs, concatenated) with zeros (``zero``) or with the head's mean output over every
  token of every prompt of the clean run (``mean``), at every position.
* Measured shift: ``dL_actual(ablated) - dL_actual(clean)`` for every head x prompt (first:
  logit gap at the last prompt position; full: teacher-forced log-probability gap).
* Predicted shift: the change of the head's *direct* path only, to first order: the head's output
  change at the readout position, ``delta_o = (z_repl - z) W_O``, read through the final norm
  linearised at the clean residual stream: ``sum_r sign_r * u_eff_r . delta_o(t_r)`` with the
  readout vectors of :func:`spinsim.analysis.gaps.readouts` (for ``full`` these include the
  log-softmax normaliser, ``u - E_p[u]``). Indirect paths (through later layers) are what the
  difference measured - predicted leaves.
* Fast path: the clean run records each block's input; ablating a head of layer l reruns only
  blocks l..L-1, for every head of that layer and every prompt in one batch (the hook ablates
  a different head in each copy of the prompts).

The paper's test (GPT-2): zero head L3H5 and the control L0H0 on "Lions are carnivores. Cows
are" (herbivores vs omnivores): :func:`paper_ablation_test`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from spinsim.models import arch
from spinsim.models.heads import HeadSet, head_label

from .gaps import GapMode, Study, actual_gaps, readouts
from .prompts import PromptItem, TokenizedItem, tokenize_items

__all__ = ["ABLATION_MODES", "ablate_heads", "AblationResult", "ablation_study", "LIONS_COWS",
           "paper_ablation_test", "correlation"]

ABLATION_MODES = ("zero", "mean")
LIONS_COWS = PromptItem("Lions are carnivores. Cows are", "herbivores", "omnivores", "paper:Lions/Cows")


def _slice_hook(d_head: int, plan: Sequence[Sequence[int]], n_rows: int, values: Any = None):
    """Pre-hook for the output projection. The batch is ``len(plan)`` blocks of ``n_rows``
    sequences; block i replaces the slices of heads ``plan[i]`` by zeros or ``values[h]``."""
    def hook(mod, args):
        z = args[0].clone()
        for i, hs in enumerate(plan):
            rows = slice(i * n_rows, (i + 1) * n_rows)
            for h in hs:
                sl = slice(h * d_head, (h + 1) * d_head)
                z[rows, :, sl] = 0.0 if values is None else values[h].to(z.dtype)
        return (z,) + tuple(args[1:])
    return hook


@contextlib.contextmanager
def ablate_heads(lm: Any, heads: Sequence[tuple[int, int]], mode: str = "zero",
                 means: dict[tuple[int, int], np.ndarray] | None = None) -> Iterator[None]:
    """Context manager: inside it, every forward pass of ``lm`` runs with the given heads
    ablated (``zero``, or ``mean`` with ``means[(l, h)]`` (d_head,) replacement values)."""
    import torch

    if mode not in ABLATION_MODES:
        raise ValueError(f"unknown ablation mode {mode!r}; allowed: 'zero', 'mean'")
    model = lm.model
    H = _n_heads(lm)
    d_head = _d_head(lm)
    by_layer: dict[int, list[int]] = {}
    for l, h in heads:
        by_layer.setdefault(int(l), []).append(int(h))
    handles = []
    try:
        for l, hs in by_layer.items():
            vals = None
            if mode == "mean":
                if means is None:
                    raise ValueError("mean ablation needs the heads' mean outputs (means)")
                vals = {h: torch.as_tensor(np.asarray(means[(l, h)]), dtype=torch.float32) for h in hs}
            proj = arch.out_proj(model, l)
            handles.append(proj.register_forward_pre_hook(_broadcast_hook(d_head, hs, vals)))
        yield
    finally:
        for hd in handles:
            hd.remove()
    del H


def _broadcast_hook(d_head: int, hs: Sequence[int], values: Any):
    def hook(mod, args):
        z = args[0].clone()
        for h in hs:
            sl = slice(h * d_head, (h + 1) * d_head)
            z[..., sl] = 0.0 if values is None else values[h].to(z.dtype)
        return (z,) + tuple(args[1:])
    return hook


def _n_heads(lm: Any) -> int:
    c = lm.config
    return int(getattr(c, "n_head", None) or c.num_attention_heads)


def _d_head(lm: Any) -> int:
    c = lm.config
    d = int(getattr(c, "n_embd", None) or c.hidden_size)
    return int(getattr(c, "head_dim", None) or d // _n_heads(lm))


# --------------------------------------------------------------------------- partial forward
class _Replay:
    """Clean run that records each block's input (and call arguments), then reruns blocks l..L-1
    from that input for a batch made of ``reps`` copies of the sequences."""

    def __init__(self, lm: Any, seqs: Sequence[Sequence[int]], positions: Sequence[Sequence[int]]):
        import torch

        self.lm = lm
        self.model = lm.model
        self.blocks = arch.blocks(self.model)
        self.seqs = [list(s) for s in seqs]
        self.positions = [list(p) for p in positions]
        self.n = len(self.seqs)
        T = max(len(s) for s in self.seqs)
        ids = torch.zeros((self.n, T), dtype=torch.long)
        for b, s in enumerate(self.seqs):
            ids[b, :len(s)] = torch.as_tensor(s)
        self.calls: list[tuple[Any, tuple, dict]] = [None] * len(self.blocks)  # type: ignore[list-item]
        self.z: list[Any] = [None] * len(self.blocks)

        def block_hook(l):
            def hook(mod, args, kwargs):
                self.calls[l] = (args[0].detach(), tuple(args[1:]), dict(kwargs))
            return hook

        def z_hook(l):
            def hook(mod, args):
                self.z[l] = args[0].detach()
            return hook

        hs = [b.register_forward_pre_hook(block_hook(l), with_kwargs=True) for l, b in enumerate(self.blocks)]
        hs += [arch.out_proj(self.model, l).register_forward_pre_hook(z_hook(l)) for l in range(len(self.blocks))]
        fin = {}
        hs.append(arch.final_norm_module(self.model).register_forward_pre_hook(
            lambda m, a: fin.__setitem__("x", a[0].detach())))
        try:
            with torch.no_grad():
                base = self.model.transformer if hasattr(self.model, "transformer") else self.model.model
                out = base(input_ids=ids, use_cache=False)
        finally:
            for h in hs:
                h.remove()
        self.final_in = fin["x"]
        self.clean_logits = self._logits(out.last_hidden_state, 1)[0]

    def _logits(self, hidden: Any, reps: int) -> list[list[np.ndarray]]:
        """Logits (n_pos, vocab) per copy and sequence at the requested positions."""
        import torch

        rows, cols, sizes = [], [], []
        for r in range(reps):
            for b in range(self.n):
                rows += [r * self.n + b] * len(self.positions[b])
                cols += list(self.positions[b])
                sizes.append(len(self.positions[b]))
        with torch.no_grad():
            logits = self.model.lm_head(hidden[torch.as_tensor(rows), torch.as_tensor(cols)]).double().numpy()
        parts = np.split(logits, np.cumsum(sizes)[:-1])
        return [parts[r * self.n:(r + 1) * self.n] for r in range(reps)]

    @staticmethod
    def _expand(obj: Any, n: int, reps: int) -> Any:
        import torch

        if reps == 1:
            return obj
        if isinstance(obj, torch.Tensor):
            if obj.dim() > 0 and obj.shape[0] == n and n > 1:
                return obj.repeat(reps, *([1] * (obj.dim() - 1)))
            return obj
        if isinstance(obj, tuple):
            return tuple(_Replay._expand(o, n, reps) for o in obj)
        if isinstance(obj, list):
            return [_Replay._expand(o, n, reps) for o in obj]
        if isinstance(obj, dict):
            return {k: _Replay._expand(v, n, reps) for k, v in obj.items()}
        return obj

    def run_from(self, layer: int, plan: Sequence[Sequence[int]], values: Any = None) -> list[list[np.ndarray]]:
        """Rerun blocks layer..L-1 with ``len(plan)`` copies of the batch; copy i ablates the heads
        ``plan[i]`` of ``layer``. Returns logits per copy and sequence."""
        import torch

        reps = len(plan)
        x, args, kwargs = self.calls[layer]
        h = x.repeat(reps, 1, 1)
        d_head = _d_head(self.lm)
        handle = arch.out_proj(self.model, layer).register_forward_pre_hook(_slice_hook(d_head, plan, self.n, values))
        try:
            with torch.no_grad():
                for j in range(layer, len(self.blocks)):
                    _, a, k = self.calls[j]
                    h = self.blocks[j](h, *self._expand(a, self.n, reps), **self._expand(k, self.n, reps))
                    if isinstance(h, tuple):
                        h = h[0]
                hidden = arch.final_norm_module(self.model)(h)
        finally:
            handle.remove()
        return self._logits(hidden, reps)


def _buckets(lengths: Sequence[int], waste: float = 0.2) -> list[list[int]]:
    """Indices grouped by length (sorted) so that padding wastes at most ``waste`` of each batch."""
    order = sorted(range(len(lengths)), key=lambda b: lengths[b])
    out: list[list[int]] = []
    for b in order:
        if out:
            cand = out[-1] + [b]
            total = sum(lengths[i] for i in cand)
            if len(cand) * lengths[b] - total <= waste * len(cand) * lengths[b]:
                out[-1] = cand
                continue
        out.append([b])
    return out


class _GroupedReplay:
    """:class:`_Replay` per bucket of similar-length sequences (little padding), results in input order."""

    def __init__(self, lm: Any, seqs: Sequence[Sequence[int]], positions: Sequence[Sequence[int]]):
        self.n = len(seqs)
        self.groups = [(idx, _Replay(lm, [seqs[b] for b in idx], [positions[b] for b in idx]))
                       for idx in _buckets([len(s) for s in seqs])]
        self.where = {}
        for g, (idx, _) in enumerate(self.groups):
            for r, b in enumerate(idx):
                self.where[b] = (g, r)
        self.clean_logits = [self.groups[self.where[b][0]][1].clean_logits[self.where[b][1]] for b in range(self.n)]

    def z(self, layer: int, b: int) -> Any:
        """Head outputs (T_b, n_heads * d_head) of sequence b entering layer's output projection."""
        g, r = self.where[b]
        rp = self.groups[g][1]
        return rp.z[layer][r, : len(rp.seqs[r])]

    def final_in(self, b: int) -> np.ndarray:
        g, r = self.where[b]
        rp = self.groups[g][1]
        return rp.final_in[r, : len(rp.seqs[r])].float().numpy()

    def run_from(self, layer: int, plan: Sequence[Sequence[int]], values: Any = None) -> list[list[np.ndarray]]:
        out: list[list[Any]] = [[None] * self.n for _ in plan]
        for idx, rp in self.groups:
            res = rp.run_from(layer, plan, values)
            for i in range(len(plan)):
                for r, b in enumerate(idx):
                    out[i][b] = res[i][r]
        return out


# --------------------------------------------------------------------------- the study
def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two flattened arrays (nan entries dropped; nan if < 3 points or constant)."""
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


@dataclass
class AblationResult:
    """Ablation shifts, arrays indexed [ablation mode, prompt, layer, head] (nan where a head was
    not ablated). ``clean``: dL_actual (P,) of the clean run."""

    modes: tuple[str, ...]
    candidates: str
    heads: list[tuple[int, int]]
    clean: np.ndarray
    measured: np.ndarray
    predicted: np.ndarray
    n_layers: int
    n_heads: int
    extras: dict[str, Any] = field(default_factory=dict)

    def correlations(self) -> dict[str, dict[str, Any]]:
        """Per ablation mode: ``pooled`` r over head x prompt, ``per_prompt`` r across heads (P,),
        ``head_mean`` r of the prompt-averaged shifts across heads."""
        import warnings

        out = {}
        for i, m in enumerate(self.modes):
            meas, pred = self.measured[i], self.predicted[i]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # heads not ablated: all-nan columns
                m_mean, p_mean = np.nanmean(meas, 0), np.nanmean(pred, 0)
            out[m] = {"pooled": correlation(meas, pred),
                      "per_prompt": np.array([correlation(meas[p], pred[p]) for p in range(meas.shape[0])]),
                      "head_mean": correlation(m_mean, p_mean)}
        return out


def _study_sequences(items: Sequence[TokenizedItem], candidates: str) -> tuple[list, list]:
    if candidates == "first":
        return [list(it.prompt_ids) for it in items], [[it.n_prompt - 1] for it in items]
    seqs, pos = [], []
    for it in items:
        for ans in (it.correct_ids, it.wrong_ids):
            seqs.append(list(it.prompt_ids) + list(ans))
            pos.append([it.n_prompt - 1 + k for k in range(len(ans))])
    return seqs, pos


def _gaps_from_logits(items: Sequence[TokenizedItem], logits: list[np.ndarray], candidates: str) -> np.ndarray:
    from .gaps import Study
    from spinsim.models.capture import Capture

    if candidates == "first":
        # lay the logits out as a Study with seq 2p = prompt (only position 0 used)
        padded = []
        for p in range(len(items)):
            padded += [logits[p], logits[p]]
        cap = Capture(tokens=[], x=[], final_in=[], logits=padded, logit_positions=[])
    else:
        cap = Capture(tokens=[], x=[], final_in=[], logits=list(logits), logit_positions=[])
    return actual_gaps(Study(list(items), cap), candidates)


def ablation_study(lm: Any, heads: HeadSet, items: Sequence[TokenizedItem],
                   which: Sequence[tuple[int, int]] | None = None, modes: Sequence[str] = ("zero", "mean"),
                   candidates: str = "first", progress: Any = None) -> AblationResult:
    """Ablate each head of ``which`` (default: all) alone, in each mode, on every item.

    ``heads`` supplies W_O (correct rows). Returns an :class:`AblationResult`; the predicted shifts
    use the clean run's final-norm inputs (see module docstring).
    """
    import torch

    for m in modes:
        if m not in ABLATION_MODES:
            raise ValueError(f"unknown ablation mode {m!r}; allowed: 'zero', 'mean'")
    if heads.o_slice != "correct":
        raise ValueError("ablation predictions need the heads' real output maps (o_slice 'correct')")
    L, H, dh = heads.n_layers, heads.n_heads, heads.d_head
    which = [(l, h) for l in range(L) for h in range(H)] if which is None else [tuple(map(int, x)) for x in which]
    seqs, positions = _study_sequences(items, candidates)
    rp = _GroupedReplay(lm, seqs, positions)
    P = len(items)
    clean = _gaps_from_logits(items, rp.clean_logits, candidates)

    # mean head outputs over every token of every sequence (per layer, (H, d_head))
    means = [torch.cat([rp.z(l, b) for b in range(len(seqs))]).double().mean(0).reshape(H, dh).numpy()
             for l in range(L)]

    # readout vectors (final norm linearised at the clean run) for the predicted direct shift
    from spinsim.models.capture import Capture
    cap = Capture(tokens=[np.asarray(s) for s in seqs], x=[], final_in=[], logits=[], logit_positions=[])
    fin = [rp.final_in(b) for b in range(len(seqs))]
    if candidates == "first":
        cap.final_in = [f for f in fin for _ in (0, 1)]
        cap.logits = [lg for lg in rp.clean_logits for _ in (0, 1)]
    else:
        cap.final_in, cap.logits = fin, list(rp.clean_logits)
    study = Study(list(items), cap)
    mode_rd = GapMode(input="residual", o_slice="correct", candidates=candidates, biases="exact", final_norm="linear")
    rds = readouts(study, lm, mode_rd)
    WO = heads.W_O.astype(np.float64)

    measured = np.full((len(modes), P, L, H), np.nan)
    predicted = np.full((len(modes), P, L, H), np.nan)
    by_layer: dict[int, list[int]] = {}
    for l, h in which:
        by_layer.setdefault(l, []).append(h)
    for mi, mode in enumerate(modes):
        for l, hs in sorted(by_layer.items()):
            vals = None
            if mode == "mean":
                vals = {h: torch.as_tensor(means[l][h], dtype=torch.float32) for h in hs}
            logits = rp.run_from(l, [[h] for h in hs], vals)
            for i, h in enumerate(hs):
                measured[mi, :, l, h] = _gaps_from_logits(items, logits[i], candidates) - clean
                for p, terms in enumerate(rds):
                    tot = 0.0
                    for s, t, u, sign in terms:
                        b = s // 2 if candidates == "first" else s
                        z = rp.z(l, b)[t, h * dh:(h + 1) * dh].double().numpy()
                        repl = np.zeros(dh) if mode == "zero" else means[l][h]
                        tot += sign * float((repl - z) @ (WO[l, h] @ u))
                    predicted[mi, p, l, h] = tot
            if progress is not None:
                progress(mode, l)
    return AblationResult(tuple(modes), candidates, list(which), clean, measured, predicted, L, H,
                          {"means": np.stack(means)})


def paper_ablation_test(lm: Any, heads: HeadSet, labels: Sequence[str] = ("L3H5", "L0H0"),
                        mode: str = "zero", item: PromptItem = LIONS_COWS) -> dict[str, dict[str, float]]:
    """The paper's test: ablate each head alone on "Lions are carnivores. Cows are" and report the
    clean first-token gap (herbivores - omnivores), the ablated gap and the shift per head."""
    from spinsim.models.heads import parse_head

    which = [parse_head(x, heads.n_layers, heads.n_heads) for x in labels]
    titems = tokenize_items([item], lm.encode)
    res = ablation_study(lm, heads, titems, which, (mode,), "first")
    out = {}
    for l, h in which:
        out[head_label(l, h)] = {"clean_gap": float(res.clean[0]),
                                 "ablated_gap": float(res.clean[0] + res.measured[0, 0, l, h]),
                                 "shift": float(res.measured[0, 0, l, h]),
                                 "predicted_direct_shift": float(res.predicted[0, 0, l, h])}
    return out

