"""spinsim extract / gaps / ablate on tiny saved models: files, layouts, exit codes, one-line errors."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

import torch

from _tiny_models import PAPER20, SHARED_GPT2, gpt2_dir, llama_dir
from test_gaps import _paper_reference
from spinsim.analysis.ablation import LIONS_COWS, ablate_heads
from spinsim.analysis.prompts import load_prompts
from spinsim.cli import main
from spinsim.models import loading
from spinsim.models.loading import load_model


def _check_family_wise_p(f: h5py.File, mode: str) -> None:
    """The stored family-wise p of every head equals the permutation max-|r| count recomputed
    from the stored null and r, (1 + #{null >= |r|}) / (1 + n_perm), and falls as |r| grows."""
    r = np.abs(f[f"{mode}/stats/pearson_r"][()]).ravel()
    p = f[f"{mode}/stats/fwer_p"][()].ravel()
    null = f[f"{mode}/stats/null_max_abs_r"][()]
    expect = np.array([(1 + np.count_nonzero(null >= x - 1e-12)) / (1 + null.size) for x in r])
    np.testing.assert_allclose(p, expect, rtol=0, atol=1e-15)
    order = np.argsort(r)
    assert np.all(np.diff(p[order]) <= 0)
    k = int(np.argmax(r))
    assert f[f"{mode}/stats"].attrs["best_fwer_p"] == pytest.approx(p[k], abs=0)


def _err_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


@pytest.mark.parametrize("cmd", ["extract", "gaps", "ablate"])
def test_help_has_an_example(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "Examples:" in out and f"spinsim {cmd} --model" in out and "smollm2-135m" in out


def test_extract_tiny_gpt2_verified(tmp_path, capsys):
    out = tmp_path / "heads.h5"
    assert main(["extract", "--model", str(gpt2_dir()), "--out", str(out)]) == 0
    assert "max |diff|" in capsys.readouterr().err
    with h5py.File(out) as f:
        assert f.attrs["spinsim_kind"] == "extract" and f.attrs["family"] == "gpt2"
        assert float(f.attrs["verify_max_abs_err"]) < 1e-5
        g = f["heads/L3H5"]
        assert g["W_Q"].shape == (48, 8) and g["W_O"].shape == (8, 48)
        assert g.attrs["layer"] == 3 and g.attrs["head"] == 5 and g.attrs["scale"] == pytest.approx(8 ** -0.5)
        assert f["spectrum/lambda_max"].shape == (4, 6)
        assert f["spectrum/lambda_max"].dims[0].label == "layer"
        assert f["layer"].attrs["units"] == "index"
        assert set(f["spectrum/ferro_class"][()].astype(str).ravel()) <= {"ferro", "antiferro"}
    # an existing file is refused without --overwrite (usage error, exit 2)
    assert main(["extract", "--model", str(gpt2_dir()), "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in _err_line(capsys)


def test_extract_llama_and_paper_slice_error(tmp_path, capsys):
    out = tmp_path / "ll.h5"
    assert main(["extract", "--model", str(llama_dir()), "--out", str(out)]) == 0
    with h5py.File(out) as f:
        assert bool(f.attrs["rotary"]) and f["heads/L0H3"].attrs["kv_head"] == 1
        assert f["rotary/inv_freq"].shape == (4,)
    rc = main(["extract", "--model", str(llama_dir()), "--o-slice", "paper", "--out", str(tmp_path / "x.h5")])
    assert rc == 2
    assert "o_slice 'paper' is GPT-2 only" in _err_line(capsys)


def test_extract_shared_attention_only_gpt2(tmp_path, capsys):
    if not (SHARED_GPT2 / "config.json").is_file():
        pytest.skip(f"real GPT-2 small weights not present at {SHARED_GPT2}")
    out = tmp_path / "g.h5"
    assert main(["extract", "--model", str(SHARED_GPT2), "--out", str(out)]) == 0
    with h5py.File(out) as f:
        WQ, WK = f["heads/L0H0/W_Q"][()].astype(float), f["heads/L0H0/W_K"][()].astype(float)
        assert np.linalg.norm(WQ @ WK.T / 8) == pytest.approx(46.4226, abs=1e-4)
        assert "not verified" in f.attrs["verify_max_abs_err"]


def test_gaps_both_modes_file_layout(tmp_path, capsys):
    out = tmp_path / "gaps.h5"
    rc = main(["gaps", "--model", str(gpt2_dir()), "--prompts", str(PAPER20), "--permutations", "500",
               "--ablation", "zero", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "[corrected]" in text and "[paper]" in text and "family-wise p" in text and "[ablation zero]" in text
    with h5py.File(out) as f:
        a = f.attrs
        assert a["spinsim_kind"] == "gaps" and a["primary_mode"] == "corrected"
        assert a["input_mode"] == "residual" and a["o_slice"] == "correct" and a["candidates_mode"] == "full"
        assert len(a["weights_sha256"]) == 64 and a["model_id"] == str(gpt2_dir())
        th = f["gaps/theory"]
        assert th.shape == (20, 4, 6) and [d.label for d in th.dims] == ["prompt", "layer", "head"]
        assert f["gaps/actual"].shape == (20,)
        for name in ("pearson_r", "pearson_p", "spearman_rho", "spearman_p", "fwer_p", "bonferroni_p", "bh_q"):
            assert f[f"stats/{name}"].shape == (4, 6)
        assert f["paper"].attrs["o_slice"] == "paper" and f["paper"].attrs["input_mode"] == "embed"
        assert f["gaps/theory"] == f["corrected/gaps/theory"]         # a hard link to the primary mode
        # the paper mode in the file is the paper's computation, written out independently
        lm = load_model(str(gpt2_dir()))
        ref_theory, ref_actual = _paper_reference(lm.model, lm.tokenizer, load_prompts(PAPER20))
        # items whose answers share their first token (the tiny BPE's bare ' '): the paper scores
        # them as a zero gap, spinsim excludes them from the paper mode, counted and named
        ok = f["paper/gaps/included"][()].astype(bool)
        n_ex = int(f["paper/gaps"].attrs["n_excluded"])
        assert n_ex == (~ok).sum() > 0 and f["corrected/gaps"].attrs["n_excluded"] == 0
        assert f"{n_ex} of 20 items excluded" in text and "start with the same token ' '" in text
        assert np.isnan(f["paper/gaps/actual"][()][~ok]).all() and np.all(ref_actual[~ok] == 0)
        np.testing.assert_allclose(f["paper/gaps/theory"][()][ok], ref_theory[ok], rtol=1e-9,
                                   atol=1e-9 * np.abs(ref_theory).max())
        np.testing.assert_allclose(f["paper/gaps/actual"][()][ok], ref_actual[ok], rtol=1e-5, atol=1e-5)
        assert f["paper/stats/null_max_abs_r"].shape == (500,)
        assert f["prompts/text"][0].decode() == "The capital of France is Paris. The capital of Germany is"
        assert f["ablation/zero/measured"].shape == (20, 4, 6)
        assert np.isfinite(f["ablation/zero"].attrs["pooled_r"])
        assert f["corrected/stats/classification_table"][()].sum() == 24
        for mode in ("corrected", "paper"):
            _check_family_wise_p(f, mode)


def test_gaps_custom_mode_is_the_paper_with_embed(tmp_path, capsys):
    out = tmp_path / "p.h5"
    rc = main(["gaps", "--model", str(gpt2_dir()), "--input", "embed", "--o-slice", "paper", "--candidates", "first",
               "--permutations", "50", "--out", str(out)])
    assert rc == 0
    with h5py.File(out) as f:
        assert list(f.attrs["modes"]) == ["custom"]
        assert (f.attrs["biases"], f.attrs["final_norm"]) == ("drop", "none")


def test_ablate_heads_and_paper_test(tmp_path, capsys):
    out = tmp_path / "a.h5"
    rc = main(["ablate", "--model", str(llama_dir()), "--heads", "L0H1,L2H3", "--prompts", str(PAPER20),
               "--mode", "zero", "--out", str(out)])
    assert rc == 0
    with h5py.File(out) as f:
        m = f["ablation/zero/measured"][()]
        n_ex = int(f["ablation"].attrs["n_excluded"])             # first tokens coincide: NaN rows
        assert m.shape == (20, 3, 4) and np.isfinite(m[:, 0, 1]).sum() == 20 - n_ex and np.isnan(m[:, 1, 1]).all()
    capsys.readouterr()
    rc = main(["ablate", "--model", str(gpt2_dir()), "--paper-test", "--out", str(tmp_path / "l.h5")])
    assert rc == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()
            if line.split() and line.split()[0] in ("L3H5", "L0H0")}
    assert set(rows) == {"L3H5", "L0H0"}
    # the printed clean gap and shifts against full forward passes of the model (independent of the replay)
    lm = load_model(str(gpt2_dir()))
    ids = lm.encode(LIONS_COWS.prompt)
    a, b = lm.encode(" " + LIONS_COWS.correct)[0], lm.encode(" " + LIONS_COWS.wrong)[0]

    def first_token_gap() -> float:
        with torch.no_grad():
            logits = lm.model(torch.tensor([ids])).logits[0, -1].double().numpy()
        return float(logits[a] - logits[b])

    clean = first_token_gap()
    with h5py.File(tmp_path / "l.h5") as f:
        for label, (l, h) in (("L3H5", (3, 5)), ("L0H0", (0, 0))):
            with ablate_heads(lm, [(l, h)], "zero"):
                shift = first_token_gap() - clean
            _, mode, prompt, clean_printed, shift_printed, _ = rows[label]
            assert (mode, prompt) == ("zero", "0")
            assert float(clean_printed) == pytest.approx(clean, abs=1e-4)
            assert float(shift_printed) == pytest.approx(shift, abs=1e-4)
            assert f["ablation/zero/measured"][0, l, h] == pytest.approx(shift, abs=2e-5)


def test_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = str(tmp_path / "o.h5")
    assert main(["gaps", "--model", "gpt2", "--out", out]) == 1
    line = _err_line(capsys)
    assert line.startswith("spinsim gaps: error: cannot load 'gpt2'") and "local folder" in line
    assert "`hf download gpt2 --local-dir ./gpt2`" in line and "huggingface-cli" not in line   # a command that exists
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\tc\nno tabs here\n")
    assert main(["gaps", "--model", str(gpt2_dir()), "--prompts", str(bad), "--out", out]) == 2
    assert f"{bad}:2: expected 3 tab-separated fields" in _err_line(capsys)
    assert main(["ablate", "--model", str(gpt2_dir()), "--heads", "L7H0", "--out", out]) == 2
    assert "--heads: head 'L7H0' out of range" in _err_line(capsys)
    assert main(["gaps", "--model", str(llama_dir()), "--o-slice", "paper", "--out", out]) == 2
    assert "does not exist for 'llama'" in _err_line(capsys)
    assert main(["gaps", "--model", str(gpt2_dir()), "--permutations", "0", "--out", out]) == 2
    assert "argument --permutations: '0': allowed: an integer >= 1" in _err_line(capsys)
    assert main(["gaps", "--model", str(tmp_path / "missing"), "--out", out]) == 2
    assert "does not exist" in _err_line(capsys)


@pytest.mark.slow
def test_smollm2_study_one_command(tmp_path, capsys, smollm2):
    """The real study: SmolLM2-135M (270 heads) x the paper's 20 prompts, both modes, 10,000
    permutations, in one command."""
    from spinsim.models.loading import ModelLoadError, resolve_model

    try:
        resolve_model("smollm2-135m")
    except ModelLoadError as exc:
        pytest.skip(str(exc))
    out = tmp_path / "gaps.h5"
    assert main(["gaps", "--model", "smollm2-135m", "--prompts", str(PAPER20), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "[corrected]" in text and "[paper]" in text
    with h5py.File(out) as f:
        assert f["gaps/theory"].shape == (20, 30, 9) and f["paper/gaps/theory"].shape == (20, 30, 9)
        assert f.attrs["family"] == "llama" and f["paper"].attrs["o_slice"] == "correct"
        assert f["stats/null_max_abs_r"].shape == (10_000,)
        assert f["paper/gaps/actual"][0] > 0                      # " Berlin" over " Rome"
        for mode in ("corrected", "paper"):
            _check_family_wise_p(f, mode)


def test_validate_usage_errors(tmp_path, capsys):
    """Bad --head, blank or same-token answers are usage errors (exit 2) naming the bad value."""
    base = ["validate", "--model", str(gpt2_dir()), "--prompt", "A dog says", "--T", "1:2:3", "--sweeps", "10",
            "--out", str(tmp_path / "v.h5")]
    assert main(base + ["--head", "L0X1", "--correct", "woof", "--wrong", "moo"]) == 2
    assert "argument --head: bad head label 'L0X1'" in _err_line(capsys)
    assert main(base + ["--head", "L9H0", "--correct", "woof", "--wrong", "moo"]) == 2
    assert "--head: head 'L9H0' out of range: the model has L0-L3, H0-H5" in _err_line(capsys)
    assert main(base + ["--head", "L0H0", "--correct", "  ", "--wrong", "moo"]) == 2
    assert "argument --correct: '  ' is blank" in _err_line(capsys)
    assert main(base + ["--head", "L0H0", "--correct", " woof", "--wrong", "woof"]) == 2
    assert "--correct ' woof' and --wrong 'woof' are the same answer" in _err_line(capsys)
    assert main(base + ["--head", "L0H0", "--correct", "woof", "--wrong", "wolf"]) == 2
    assert "answers 'woof' and 'wolf' start with the same token ' w' (id " in _err_line(capsys)
    assert not (tmp_path / "v.h5").exists()
