"""Answers tokenised as the model sees them (issue 16 item 1): prompt and answer tokenised together,
on a SentencePiece-style tokenizer that makes a leading space a token of its own and on a
SmolLM2-like byte-level tokenizer that splits digits after a space. Every gap is checked against
the teacher-forced logits computed by hand from the model's own forward pass."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from _tiny_models import llama_model
from spinsim.analysis.gaps import GapMode, actual_gaps, excluded_items, run_forward, theory_gaps
from spinsim.analysis.prompts import PromptItem, tokenize_items
from spinsim.analysis.study import ModeStats, TooFewItemsError, run_gap_study
from spinsim.models.answers import (AnswerBoundaryError, BlankAnswerError, NoDifferingTokenError, SharedFirstTokenError, answer_ids,
                                    comparison_index, probe_tokens)
from spinsim.models.capture import run_capture
from spinsim.models.hamiltonians import head_system
from spinsim.models.heads import extract_heads
from spinsim.models.loading import model_from_module

WORDS = [("The capital of France is Paris. The capital of Germany is", "Berlin", "Rome"),
         ("A dog says woof. A cat says", "meow", "moo"),
         ("The opposite of hot is", "cold", "warm"),
         ("Lions are carnivores. Cows are", "herbivores", "omnivores")]
NUMBERS = [("One dozen is 12. Two dozen is", "24", "36"),
           ("Three plus four is", "7", "8"),
           ("Ten minus three is", "7", "6"),
           ("A week has", "7", "5")]


def _corpus() -> list[str]:
    return [f"{p} {a}" for p, a, _ in WORDS + NUMBERS] + [f"{p} {b}" for p, _, b in WORDS + NUMBERS]


@functools.lru_cache(maxsize=None)
def _tokenizer(kind: str):
    """'sentencepiece': Llama-2 style normaliser (prepend '▁', spaces -> '▁'), split before every
    '▁', so ' Berlin' alone is ['▁', '▁Berlin']; 'smollm2': byte-level BPE with single digits split
    off first, so ' 24' is ['Ġ', '2', '4'] alone and after a prompt."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "sentencepiece":
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"])
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False)])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=300)      # the corpus' bytes only: room for word merges
    tok.train_from_iterator(_corpus(), trainer)
    assert tok.get_vocab_size() <= 320
    return PreTrainedTokenizerFast(tokenizer_object=tok)


@functools.lru_cache(maxsize=None)
def _lm(kind: str):
    return model_from_module(llama_model(n_layer=2, seed=3), _tokenizer(kind), f"tiny-llama-{kind}")


def _items(rows):
    return [PromptItem(p, a, b, f"test:{i + 1}") for i, (p, a, b) in enumerate(rows)]


def _forward_logits(lm, ids) -> np.ndarray:
    with torch.no_grad():
        return lm.model(torch.tensor([list(ids)])).logits[0].double().numpy()


def _log_softmax(z):
    return z - z.max(-1, keepdims=True) - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))


def _hand_full_gap(lm, it) -> float:
    """sum_k log p(A_k | prompt, A_<k) - the same for B, from the model's own forward passes."""
    out = 0.0
    for ids, sign in ((it.correct_ids, 1.0), (it.wrong_ids, -1.0)):
        lp = _log_softmax(_forward_logits(lm, it.prompt_ids + ids))
        out += sign * sum(lp[it.n_prompt - 1 + k, t] for k, t in enumerate(ids))
    return out


def test_sentencepiece_leading_space_token():
    lm = _lm("sentencepiece")
    enc = lm.encode
    assert enc(" Berlin")[0] == enc(" Rome")[0] == enc(" cold")[0]          # alone: the bare '▁' first
    titems = tokenize_items(_items(WORDS), enc)
    for it in titems:
        assert it.prompt_ids + it.correct_ids == tuple(enc(f"{it.item.prompt} {it.item.correct}"))
        assert it.correct_ids != tuple(enc(" " + it.item.correct))           # not the double space
        assert lm.tokenizer.decode(list(it.correct_ids)).strip() == it.item.correct
    assert excluded_items(titems, "first") == []                             # first tokens differ
    study = run_forward(lm, titems)
    first, full = actual_gaps(study, "first"), actual_gaps(study, "full")
    for p, it in enumerate(titems):
        lg = _forward_logits(lm, it.prompt_ids)[-1]
        assert first[p] == pytest.approx(lg[it.correct_ids[0]] - lg[it.wrong_ids[0]], rel=1e-5, abs=1e-5)
        assert full[p] == pytest.approx(_hand_full_gap(lm, it), rel=1e-5, abs=1e-5)
    # the probe's candidates are the answers' first tokens after the prompt, not the shared '▁'
    sysm = head_system(lm, "L1H2", WORDS[0][0], input="embed", candidates=["Berlin", "Rome"])
    assert list(sysm.candidates) == [titems[0].correct_ids[0], titems[0].wrong_ids[0]]
    assert sysm.candidates[0] != sysm.candidates[1]


def test_numeric_answers_smollm2_style():
    lm = _lm("smollm2")
    titems = tokenize_items(_items(NUMBERS), lm.encode)
    space = lm.encode(" ")[0]
    assert all(it.correct_ids[0] == it.wrong_ids[0] == space for it in titems)   # ' 24' -> ' ', '2', '4'
    # a first-token comparison is undefined: every item excluded, naming it; too few left -> refused
    ex = excluded_items(titems, "first", lambda ids: lm.tokenizer.decode(ids))
    assert [p for p, _ in ex] == [0, 1, 2, 3] and "test:1: answers '24' and '36' start with the same token ' '" in ex[0][1]
    study = run_forward(lm, titems)
    assert np.isnan(actual_gaps(study, "first")).all()
    with pytest.raises(TooFewItemsError, match=r"mode 'paper' \(candidates first\): 4 of 4 items excluded"):
        run_gap_study(lm, titems, [GapMode.paper("llama")], n_perm=10)
    # the first differing token, read after prompt + ' ': by hand from the model's forward pass
    fd = actual_gaps(study, "first-differing")
    full = actual_gaps(study, "full")
    for p, it in enumerate(titems):
        k = comparison_index(it.correct_ids, it.wrong_ids, first_differing=True)
        assert k == 1
        lg = _forward_logits(lm, it.prompt_ids + it.correct_ids[:k])[-1]
        assert fd[p] == pytest.approx(lg[it.correct_ids[k]] - lg[it.wrong_ids[k]], rel=1e-5, abs=1e-5)
        assert full[p] == pytest.approx(_hand_full_gap(lm, it), rel=1e-5, abs=1e-5)
    # dL_theory at the first differing token: the head's real output there, read against the answers
    heads = extract_heads(lm)
    mode = GapMode(input="residual", o_slice="correct", candidates="first-differing", biases="exact",
                   final_norm="none")
    th = theory_gaps(study, heads, lm, mode)
    U = lm.weights.get("lm_head.weight").astype(np.float64)
    dh = heads.d_head
    for p, it in enumerate(titems):
        cap = run_capture(lm, [list(it.prompt_ids + it.correct_ids[:1])], head_outputs=True, inputs=False)
        du = U[it.correct_ids[1]] - U[it.wrong_ids[1]]
        for l in range(heads.n_layers):
            for h in range(heads.n_heads):
                z = cap.z[0][l, -1, h * dh:(h + 1) * dh].astype(np.float64)
                assert th[p, l, h] == pytest.approx(z @ heads.W_O[l, h] @ du, rel=1e-4, abs=1e-5)
    # the probe refuses the shared first token, or reads the first differing one when asked
    with pytest.raises(SharedFirstTokenError, match=r"answers '24' and '36' start with the same token ' '"):
        head_system(lm, "L0H1", NUMBERS[0][0], input="embed", candidates=["24", "36"])
    sysm = head_system(lm, "L0H1", NUMBERS[0][0], input="embed", candidates=["24", "36"], first_differing=True)
    assert list(sysm.tokens) == list(titems[0].prompt_ids) + [space]
    assert list(sysm.candidates) == [titems[0].correct_ids[1], titems[0].wrong_ids[1]]


def test_gap_study_reports_exclusions_and_survives_constant_gaps():
    lm = _lm("smollm2")
    items = _items(NUMBERS + WORDS)
    titems = tokenize_items(items, lm.encode)
    gs = run_gap_study(lm, titems, [GapMode.paper("llama"), GapMode.corrected()], n_perm=20)
    paper, corr = gs.results
    assert [p for p, _ in paper.excluded] == [0, 1, 2, 3] and corr.excluded == []
    assert paper.stats.n_prompts == 4 and corr.stats.n_prompts == 8
    np.testing.assert_array_equal(paper.included, [False] * 4 + [True] * 4)
    # three copies of one item (as a caller may build them): r undefined, reported, no All-NaN crash
    same = tokenize_items(_items(WORDS[:1] * 3), lm.encode)
    gs = run_gap_study(lm, same, [GapMode.corrected()], n_perm=10)
    assert np.isnan(gs.results[0].stats.pearson_r).all()
    rec = ModeStats.of(gs.results[0], 0.05, None)
    assert rec.best_head == "" and np.isnan(rec.best_r)


def test_answer_helpers_refuse_what_is_undefined():
    enc = lambda text: [ord(c) for c in text]  # noqa: E731
    with pytest.raises(BlankAnswerError, match="answer '  ' is blank"):
        answer_ids(enc, "a b", "  ")
    with pytest.raises(NoDifferingTokenError, match="the tokens of one are a prefix of the other's"):
        comparison_index([1, 2], [1, 2, 3], first_differing=True)
    assert comparison_index([5, 2], [6, 2]) == 0
    pt = probe_tokens(enc, "ab", ["xy", "xz"], first_differing=True)
    assert pt.context == tuple(enc("ab x")) and pt.candidates == (ord("y"), ord("z")) and pt.k == 2
    with pytest.raises(BlankAnswerError):
        probe_tokens(enc, "ab", ["x", ""])
    with pytest.raises(AnswerBoundaryError, match=r"prompt 'a b ' ends with whitespace"):
        answer_ids(enc, "a b ", "x")


def test_excluded_items_survive_the_ablation_file(tmp_path):
    from spinsim.analysis.ablation import AblationResult
    from spinsim.analysis.demo_store import read_ablation, write_ablation_stage

    meas = np.array([np.nan, 0.5, -0.25]).reshape(1, 3, 1, 1)
    ab = AblationResult(("zero",), "first", [(0, 0)], np.array([np.nan, 1.0, 2.0]), meas, 2 * meas, 1, 1,
                        excluded=[(0, "p.tsv:1: answers '24' and '36' start with the same token ' '")])
    write_ablation_stage(tmp_path / "a.h5", ab, 3)
    back = read_ablation(tmp_path / "a.h5")
    assert back.excluded == ab.excluded
    np.testing.assert_array_equal(back.measured, meas)
