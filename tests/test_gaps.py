"""Logit gaps: the paper's computation reproduced exactly (against a straightforward independent
implementation, column slice included), the corrected path, and the prompt files."""
from __future__ import annotations

import numpy as np
import pytest

from _tiny_models import PAPER20, loaded, random_items
from spinsim.analysis.gaps import GapMode, actual_gaps, excluded_items, run_forward, theory_gaps
from spinsim.analysis.prompts import PromptFileError, load_prompts, tokenize_items
from spinsim.models.capture import run_capture
from spinsim.models.heads import extract_heads


def _paper_reference(model, tok, items):
    """The paper's formulas written out, loop by loop, from the raw state dict (float64)."""
    import torch

    sd = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    cfg = model.config
    d, H, L = cfg.n_embd, cfg.n_head, cfg.n_layer
    dh = d // H
    wte = sd["transformer.wte.weight"]
    theory = np.zeros((len(items), L, H))
    actual = np.zeros(len(items))
    for p, it in enumerate(items):
        ids = tok(it.prompt, add_special_tokens=False)["input_ids"]
        a = tok(" " + it.correct, add_special_tokens=False)["input_ids"][0]
        b = tok(" " + it.wrong, add_special_tokens=False)["input_ids"][0]
        s = wte[ids]                                                   # raw embeddings, no position, no LN
        for l in range(L):
            Wa = sd[f"transformer.h.{l}.attn.c_attn.weight"]
            Wp = sd[f"transformer.h.{l}.attn.c_proj.weight"]
            for h in range(H):
                WQ = Wa[:, h * dh:(h + 1) * dh]
                WK = Wa[:, d + h * dh:d + (h + 1) * dh]
                WV = Wa[:, 2 * d + h * dh:2 * d + (h + 1) * dh]
                WO = Wp[:, h * dh:(h + 1) * dh].T                      # the paper's column slice
                J = WQ @ WK.T / np.sqrt(dh)
                e = np.array([s[-1] @ J @ s[i] for i in range(len(ids))])   # last token, self included
                alpha = np.exp(e - e.max())
                alpha /= alpha.sum()
                N0 = sum(alpha[i] * (s[i] @ WV @ WO) for i in range(len(ids)))
                theory[p, l, h] = N0 @ (wte[a] - wte[b])
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1].double().numpy()
        actual[p] = logits[a] - logits[b]
    return theory, actual


@pytest.fixture(scope="module")
def gpt2_study():
    lm = loaded("gpt2")
    items = load_prompts(PAPER20)
    titems = tokenize_items(items, lm.encode)
    return lm, items, titems, run_forward(lm, titems)


def test_paper_mode_reproduced_exactly(gpt2_study):
    lm, items, titems, study = gpt2_study
    mode = GapMode.paper("gpt2")
    assert (mode.input, mode.o_slice, mode.candidates, mode.biases, mode.final_norm) == \
        ("embed", "paper", "first", "drop", "none")
    th = theory_gaps(study, extract_heads(lm, "paper"), lm, mode)
    ac = actual_gaps(study, "first")
    ref_th, ref_ac = _paper_reference(lm.model, lm.tokenizer, items)
    # the tiny byte-level BPE splits " Berlin" into " " + "Berlin" (as SmolLM2 splits " 24"): those
    # items' first tokens coincide, the paper's code scores them as a zero gap, spinsim excludes them
    ex = [p for p, _ in excluded_items(titems, "first")]
    ok = np.setdiff1d(np.arange(len(items)), ex)
    assert 3 <= len(ok) < len(items)
    np.testing.assert_array_equal(ref_ac[ex], 0.0)
    assert np.isnan(th[ex]).all() and np.isnan(ac[ex]).all()
    np.testing.assert_allclose(th[ok], ref_th[ok], rtol=1e-9, atol=1e-9 * np.abs(ref_th).max())
    np.testing.assert_allclose(ac[ok], ref_ac[ok], rtol=1e-5, atol=1e-5)


def test_corrected_path_differs_where_it_should(gpt2_study):
    lm, _, titems, study = gpt2_study
    paper = theory_gaps(study, extract_heads(lm, "paper"), lm, GapMode.paper("gpt2"))
    rows = theory_gaps(study, extract_heads(lm, "correct"), lm, GapMode.paper("gpt2").with_(o_slice="correct"))
    corrected = theory_gaps(study, extract_heads(lm, "correct"), lm, GapMode.corrected())
    for other in (rows, corrected):
        assert np.nanmax(np.abs(other - paper)) > 0.1 * np.nanmax(np.abs(paper))
    ok = ~np.isnan(actual_gaps(study, "first"))
    assert not np.allclose(actual_gaps(study, "full")[ok], actual_gaps(study, "first")[ok])
    multi = [i for i, it in enumerate(titems) if len(it.correct_ids) > 1 or len(it.wrong_ids) > 1]
    single = [i for i, it in enumerate(titems) if len(it.correct_ids) == 1 and len(it.wrong_ids) == 1]
    assert multi and single
    # single-token answer pairs: the full gap is the first-token gap (log-softmax normaliser cancels)
    np.testing.assert_allclose(actual_gaps(study, "full")[single], actual_gaps(study, "first")[single], atol=1e-9)
    full = theory_gaps(study, extract_heads(lm), lm, GapMode.corrected().with_(final_norm="none"))
    first = theory_gaps(study, extract_heads(lm), lm, GapMode.corrected().with_(final_norm="none", candidates="first"))
    np.testing.assert_allclose(full[single], first[single], rtol=1e-7, atol=1e-9)
    assert np.nanmax(np.abs(full[multi] - first[multi])) > 1e-3


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_residual_theory_is_the_heads_direct_logit_contribution(kind):
    """residual + correct rows + exact biases, read straight: N0 . (u_A - u_B) equals the head's
    real output (captured at the output projection) times its W_O rows, read against the answers."""
    lm = loaded(kind)
    items = random_items(5)
    study = run_forward(lm, items)
    heads = extract_heads(lm)
    mode = GapMode(input="residual", o_slice="correct", candidates="first", biases="exact", final_norm="none")
    th = theory_gaps(study, heads, lm, mode)
    cap = run_capture(lm, [it.prompt_ids for it in items], head_outputs=True, inputs=False)
    U = lm.weights.get("lm_head.weight").astype(np.float64)
    dh = heads.d_head
    for p, it in enumerate(items):
        du = U[it.correct_ids[0]] - U[it.wrong_ids[0]]
        for l in range(heads.n_layers):
            for h in range(heads.n_heads):
                z = cap.z[p][l, -1, h * dh:(h + 1) * dh].astype(np.float64)
                assert th[p, l, h] == pytest.approx(z @ heads.W_O[l, h] @ du, rel=1e-4, abs=1e-5)


def test_embed_pos_and_llama_paper_analogue():
    lm = loaded("llama")
    items = random_items(4)
    study = run_forward(lm, items, residual=False)
    mode = GapMode.paper("llama")
    assert mode.o_slice == "correct"
    th = theory_gaps(study, extract_heads(lm), lm, mode)
    thp = theory_gaps(study, extract_heads(lm), lm, mode.with_(input="embed+pos"))   # rotary switched on
    assert th.shape == (4, 3, 4) and not np.allclose(th, thp)
    with pytest.raises(ValueError, match="o-slice 'paper' .* does not exist for 'llama'"):
        GapMode.paper("gpt2").for_family("llama")
    with pytest.raises(ValueError, match="unknown input mode 'raw'; allowed"):
        GapMode(input="raw")


# ----------------------------------------------------------------------------- prompt files
def test_shipped_prompts():
    items = load_prompts(PAPER20)
    assert len(items) == 20
    assert items[0].prompt == "The capital of France is Paris. The capital of Germany is"
    assert (items[0].correct, items[0].wrong) == ("Berlin", "Rome")
    assert (items[13].correct, items[13].wrong) == ("herbivores", "omnivores")
    assert all(not it.correct.startswith(" ") for it in items)
    assert load_prompts("paper20") == items


def _write(tmp_path, text):
    p = tmp_path / "p.tsv"
    p.write_text(text)
    return p


def test_prompt_file_errors_name_file_and_line(tmp_path):
    good = "a b\tx\ty\nc d\tx\tz\ne f\tu\tv\n"
    assert len(load_prompts(_write(tmp_path, "prompt\tcorrect\twrong\n# c\n\n" + good))) == 3
    p = _write(tmp_path, good + "only two\tfields\n")
    with pytest.raises(PromptFileError, match=rf"{p}:4: expected 3 tab-separated fields .* got 2"):
        load_prompts(p)
    p = _write(tmp_path, good + "prompt\t\twrong\n")
    with pytest.raises(PromptFileError, match=r"p.tsv:4: empty correct answer"):
        load_prompts(p)
    p = _write(tmp_path, "a\tx\tx\n" + good)
    with pytest.raises(PromptFileError, match=r"p.tsv:1: correct and wrong answers are the same"):
        load_prompts(p)
    with pytest.raises(PromptFileError, match="1 prompt\\(s\\); correlations across prompts need at least 3"):
        load_prompts(_write(tmp_path, "a\tb\tc\n"))
    with pytest.raises(PromptFileError, match="prompt file 'nope.tsv' not found"):
        load_prompts("nope.tsv")


def test_answer_tokenisation_errors_are_reported(tmp_path):
    p = _write(tmp_path, "a b\tx\ty\nc d\tx\tz\ne f\tu\tv\n")
    items = load_prompts(p)
    # the wrong answer of line 2 adds no token after its prompt (the tokenizer drops 'z')
    enc = lambda text: [ord(c) for c in text.replace(" z", "")]  # noqa: E731
    with pytest.raises(PromptFileError, match=r"p.tsv:2: answer 'z' adds no token after the prompt 'c d'"):
        tokenize_items(items, enc)
    # answer tokens that merge into the prompt's last token
    merge = lambda text: [ord(c) for c in text.replace("b x", "B")]  # noqa: E731
    with pytest.raises(PromptFileError, match=r"p.tsv:1: answer 'x' merges into the prompt's last token"):
        tokenize_items(items, merge)
    # a case-folding tokenizer: different texts, the same tokens
    fold = lambda text: [ord(c) for c in text.lower()]  # noqa: E731
    q = _write(tmp_path, "a b\tX\tx\nc d\tx\tz\ne f\tu\tv\n")
    with pytest.raises(PromptFileError, match=r"p.tsv:1: answers 'X' and 'x' have the same tokens"):
        tokenize_items(load_prompts(q), fold)


def test_prompt_file_bom_and_repeated_items(tmp_path):
    q = tmp_path / "bom.tsv"
    q.write_bytes("prompt\tcorrect\twrong\na b\tx\ty\nc d\tx\tz\ne f\tu\tv\n".encode("utf-8-sig"))
    items = load_prompts(q)
    assert [it.prompt for it in items] == ["a b", "c d", "e f"]          # the header is not an item
    r = _write(tmp_path, "a b\tx\ty\nc d\tx\tz\na b\tx\ty\ne f\tu\tv\n")
    with pytest.raises(PromptFileError, match=r"p.tsv:3: repeats the item of line 1"):
        load_prompts(r)
