"""Forward passes with heads ablated (the machinery of :mod:`spinsim.analysis.ablation`).

* The hook: a forward pre-hook on the attention output projection (GPT-2 ``attn.c_proj``, Llama
  ``self_attn.o_proj``) rewrites head h's slice ``h*d_head:(h+1)*d_head`` of its input z (the
  heads' outputs, concatenated) with zeros (``zero``) or with given replacement values
  (``mean``: the head's mean output), at every position. :func:`ablate_heads` installs it for
  the duration of a ``with`` block.
* Replay: a clean run records each block's input; ablating a head of layer l reruns only blocks
  l..L-1, for every head of that layer and every sequence in one batch (copy i of the batch
  ablates the heads ``plan[i]``). :class:`GroupedReplay` buckets sequences of similar length so
  that padding stays small.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import numpy as np

from spinsim.models import arch

__all__ = ["ABLATION_MODES", "ablate_heads", "Replay", "GroupedReplay", "n_heads_of", "d_head_of"]

ABLATION_MODES = ("zero", "mean")


def check_ablation_mode(mode: str) -> None:
    """Raise ValueError naming the mode unless it is one of :data:`ABLATION_MODES`."""
    if mode not in ABLATION_MODES:
        raise ValueError(f"unknown ablation mode {mode!r}; allowed: 'zero', 'mean'")


def _ablation_hook(d_head: int, plan: Sequence[Sequence[int]], n_rows: int | None = None, values: Any = None):
    """Pre-hook for the output projection. The batch is ``len(plan)`` blocks of ``n_rows``
    sequences (None: one block, the whole batch); block i replaces the slices of heads
    ``plan[i]`` of z (batch, ..., n_heads * d_head) by zeros or ``values[h]`` (d_head,)."""
    def hook(mod, args):
        z = args[0].clone()
        for i, head_ids in enumerate(plan):
            rows = slice(None) if n_rows is None else slice(i * n_rows, (i + 1) * n_rows)
            for h in head_ids:
                sl = slice(h * d_head, (h + 1) * d_head)
                z[rows, ..., sl] = 0.0 if values is None else values[h].to(z.dtype)
        return (z,) + tuple(args[1:])
    return hook


@contextlib.contextmanager
def ablate_heads(lm: Any, heads: Sequence[tuple[int, int]], mode: str = "zero",
                 means: dict[tuple[int, int], np.ndarray] | None = None) -> Iterator[None]:
    """Context manager: inside it, every forward pass of ``lm`` runs with the given heads
    ablated (``zero``, or ``mean`` with ``means[(l, h)]`` (d_head,) replacement values)."""
    import torch

    check_ablation_mode(mode)
    model = lm.model
    d_head = d_head_of(lm)
    by_layer: dict[int, list[int]] = {}
    for l, h in heads:
        by_layer.setdefault(int(l), []).append(int(h))
    handles = []
    try:
        for l, head_ids in by_layer.items():
            vals = None
            if mode == "mean":
                if means is None:
                    raise ValueError("mean ablation needs the heads' mean outputs (means)")
                vals = {h: torch.as_tensor(np.asarray(means[(l, h)]), dtype=torch.float32) for h in head_ids}
            proj = arch.out_proj(model, l)
            handles.append(proj.register_forward_pre_hook(_ablation_hook(d_head, [head_ids], None, vals)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def n_heads_of(lm: Any) -> int:
    """Query heads per layer of a loaded model (from its config)."""
    c = lm.config
    return int(getattr(c, "n_head", None) or c.num_attention_heads)


def d_head_of(lm: Any) -> int:
    """Head dimension of a loaded model (from its config)."""
    c = lm.config
    d = int(getattr(c, "n_embd", None) or c.hidden_size)
    return int(getattr(c, "head_dim", None) or d // n_heads_of(lm))


# --------------------------------------------------------------------------- partial forward
class Replay:
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

        handles = [b.register_forward_pre_hook(block_hook(l), with_kwargs=True) for l, b in enumerate(self.blocks)]
        handles += [arch.out_proj(self.model, l).register_forward_pre_hook(z_hook(l))
                    for l in range(len(self.blocks))]
        fin = {}
        handles.append(arch.final_norm_module(self.model).register_forward_pre_hook(
            lambda m, a: fin.__setitem__("x", a[0].detach())))
        try:
            with torch.no_grad():
                base = self.model.transformer if hasattr(self.model, "transformer") else self.model.model
                out = base(input_ids=ids, use_cache=False)
        finally:
            for handle in handles:
                handle.remove()
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
            return tuple(Replay._expand(o, n, reps) for o in obj)
        if isinstance(obj, list):
            return [Replay._expand(o, n, reps) for o in obj]
        if isinstance(obj, dict):
            return {k: Replay._expand(v, n, reps) for k, v in obj.items()}
        return obj

    def run_from(self, layer: int, plan: Sequence[Sequence[int]], values: Any = None) -> list[list[np.ndarray]]:
        """Rerun blocks layer..L-1 with ``len(plan)`` copies of the batch; copy i ablates the heads
        ``plan[i]`` of ``layer``. Returns logits per copy and sequence."""
        import torch

        reps = len(plan)
        x, args, kwargs = self.calls[layer]
        h = x.repeat(reps, 1, 1)
        d_head = d_head_of(self.lm)
        hook = _ablation_hook(d_head, plan, self.n, values)
        handle = arch.out_proj(self.model, layer).register_forward_pre_hook(hook)
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


class GroupedReplay:
    """:class:`Replay` per bucket of similar-length sequences (little padding), results in input order."""

    def __init__(self, lm: Any, seqs: Sequence[Sequence[int]], positions: Sequence[Sequence[int]]):
        self.n = len(seqs)
        self.groups = [(idx, Replay(lm, [seqs[b] for b in idx], [positions[b] for b in idx]))
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
