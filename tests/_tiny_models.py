"""Tiny random GPT-2 and Llama models saved with save_pretrained (offline), for the transformer tests.

Weights are drawn with a large spread (std 0.3, biases too) so that attention is far from
uniform and every bias matters. A byte-level BPE tokenizer is trained on the paper's prompts, so
some answers are multi-token, as with the real tokenizers.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
PAPER20 = REPO / "data" / "prompts" / "paper20.tsv"
SHARED_GPT2 = REPO.parent / "shared" / "gpt2-small"

_ROOT = Path(tempfile.mkdtemp(prefix="spinsim-tiny-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)


def _corpus() -> list[str]:
    lines = []
    for line in PAPER20.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        p, a, b = line.split("\t")
        lines += [p, f"{p} {a}", f"{p} {b}", "Lions are carnivores. Cows are herbivores omnivores"]
    return lines


@functools.lru_cache(maxsize=None)
def tokenizer_dir() -> Path:
    """A byte-level BPE (vocabulary 320) trained on the paper prompts, saved as an HF tokenizer."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_corpus(), vocab_size=320, min_frequency=1, special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>",
                                  bos_token="<|endoftext|>", unk_token="<|endoftext|>")
    d = _ROOT / "tokenizer"
    tok.save_pretrained(d)
    return d


def _randomise(model, seed: int) -> None:
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "ln_" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


def _save(model, name: str, safe: bool = True) -> Path:
    from transformers import AutoTokenizer

    d = _ROOT / name
    model.save_pretrained(d, safe_serialization=safe)
    AutoTokenizer.from_pretrained(tokenizer_dir()).save_pretrained(d)
    return d


def gpt2_model(n_layer: int = 4, n_head: int = 6, n_embd: int = 48, seed: int = 0, zero_mlp: bool = False):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(n_layer=n_layer, n_head=n_head, n_embd=n_embd, vocab_size=320, n_positions=64,
                     bos_token_id=0, eos_token_id=0, attn_implementation="eager")
    m = GPT2LMHeadModel(cfg)
    _randomise(m, seed)
    if zero_mlp:
        with torch.no_grad():
            for blk in m.transformer.h:
                blk.mlp.c_proj.weight.zero_()
                blk.mlp.c_proj.bias.zero_()
    return m.eval()


def llama_model(n_layer: int = 3, n_head: int = 4, n_kv: int = 2, d: int = 32, seed: int = 1,
                bias: bool = True, zero_mlp: bool = False, head_dim: int | None = None):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(num_hidden_layers=n_layer, num_attention_heads=n_head, num_key_value_heads=n_kv,
                      hidden_size=d, intermediate_size=2 * d, vocab_size=320, max_position_embeddings=64,
                      attention_bias=bias, rope_theta=50.0, tie_word_embeddings=False, bos_token_id=0,
                      eos_token_id=0, pad_token_id=0, attn_implementation="eager",
                      **({} if head_dim is None else {"head_dim": head_dim}))
    m = LlamaForCausalLM(cfg)
    _randomise(m, seed)
    if zero_mlp:
        with torch.no_grad():
            for blk in m.model.layers:
                blk.mlp.down_proj.weight.zero_()
    return m.eval()


@functools.lru_cache(maxsize=None)
def gpt2_dir() -> Path:
    """Folder of a tiny random GPT-2 (4 layers x 6 heads, so L3H5 exists) + tokenizer."""
    return _save(gpt2_model(), "gpt2")


@functools.lru_cache(maxsize=None)
def llama_dir() -> Path:
    """Folder of a tiny random Llama (rotary, 4 query heads on 2 kv heads, q/k/v biases) + tokenizer."""
    return _save(llama_model(), "llama")


@functools.lru_cache(maxsize=None)
def llama_head_dim_dir() -> Path:
    """Folder of a tiny random Llama with an explicit ``head_dim`` 12 (not hidden 32 / 4 heads = 8)."""
    return _save(llama_model(n_layer=2, seed=2, head_dim=12), "llama_head_dim")


@functools.lru_cache(maxsize=None)
def loaded(kind: str):
    """The tiny model loaded through spinsim's own loader (``'gpt2'``, ``'llama'`` or ``'llama_head_dim'``)."""
    from spinsim.models.loading import load_model

    dirs = {"gpt2": gpt2_dir, "llama": llama_dir, "llama_head_dim": llama_head_dim_dir}
    return load_model(str(dirs[kind]()))


def random_items(n: int = 8, vocab: int = 320, seed: int = 0):
    """TokenizedItems with random ids (prompts 3-9 tokens, answers 1-3 tokens)."""
    from spinsim.analysis.prompts import PromptItem, TokenizedItem

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = tuple(int(x) for x in rng.integers(1, vocab, rng.integers(3, 10)))
        a = tuple(int(x) for x in rng.integers(1, vocab, rng.integers(1, 4)))
        b = tuple(int(x) for x in rng.integers(1, vocab, rng.integers(1, 4)))
        if a == b:
            b = (a[0] % (vocab - 1) + 1,)
        out.append(TokenizedItem(PromptItem(f"p{i}", "a", "b", f"random:{i}"), p, a, b))
    return out
