"""Input checked before work, one policy (issue 16 item 4, issue 14 item 6): every bad value gives
one line naming it and what is allowed, exit code 2, before any model load or heavy work. The
model loader is replaced by one that fails the test if it is called: a check that ran after the
load would exit 1 with that failure instead of 2 with its message."""
from __future__ import annotations

import shutil

import pytest

from _tiny_models import gpt2_dir, gpt2_model
from spinsim.cli import main, one_line
from spinsim.models import loading
from spinsim.solvers.mc import cuda_available


@pytest.fixture
def tiny(capsys) -> str:
    """The tiny GPT-2 folder (4 layers x 6 heads), built before the test's output is read."""
    d = str(gpt2_dir())
    capsys.readouterr()
    return d


@pytest.fixture
def no_load(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the arguments were checked")
    monkeypatch.setattr(loading, "load_model", refuse)


def _one_line(capsys, *needles: str) -> str:
    lines = [x for x in capsys.readouterr().err.strip().splitlines() if x.strip()]
    assert len(lines) == 1, lines
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert "error: error:" not in lines[0]
    return lines[0]


def _prompts(tmp_path, text: str, name: str = "p.tsv"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


GOOD = "a b\tx\ty\nc d\tx\tz\ne f\tu\tv\n"


@pytest.mark.parametrize("argv, needles", [
    (["--correct", "", "--wrong", "moo"], ["argument --correct: '' is blank"]),
    (["--correct", "woof", "--wrong", "  "], ["argument --wrong: '  ' is blank"]),
    (["--correct", "woof", "--wrong", "moo", "--T", "nan"], ["argument --T: 'nan' gives T = nan",
                                                            "finite temperatures > 0"]),
    (["--correct", "woof", "--wrong", "moo", "--T", "1:0:3"], ["argument --T: '1:0:3' gives T = 0.0"]),
    (["--correct", "woof", "--wrong", " woof"], ["--correct 'woof' and --wrong ' woof' are the same answer"]),
    (["--correct", "woof", "--wrong", "wolf"], ["answers 'woof' and 'wolf' start with the same token ' w'",
                                                "--first-differing compares"]),
    (["--correct", "woof", "--wrong", "moo", "--sweeps", "5"], ["argument --sweeps: '5': allowed: an integer >= 10"]),
    (["--correct", "woof", "--wrong", "moo", "--seed", "-1"], ["argument --seed: '-1' is out of range"]),
    (["--correct", "woof", "--wrong", "moo", "--figure", "v.txt"], ["argument --figure: 'v.txt': allowed: a file "
                                                                    "name ending in .png, .pdf, .svg"]),
])
def test_validate_checks_before_loading(tmp_path, capsys, tiny, no_load, argv, needles):
    base = ["validate", "--model", tiny, "--head", "L0H0", "--prompt", "A dog says",
            "--out", str(tmp_path / "v.h5")]
    assert main(base + argv) == 2
    _one_line(capsys, "spinsim validate: error:", *needles)


def test_head_labels_checked_against_the_config_before_loading(tmp_path, capsys, tiny, no_load):
    out = str(tmp_path / "o.h5")
    base = ["validate", "--model", tiny, "--prompt", "A dog says", "--correct", "woof", "--wrong", "moo"]
    assert main(base + ["--head", "L4H0", "--out", out]) == 2
    _one_line(capsys, "--head: head 'L4H0' out of range: the model has L0-L3, H0-H5")
    assert main(base + ["--head", "L0X0", "--out", out]) == 2
    _one_line(capsys, "argument --head: bad head label 'L0X0'")
    for heads, needle in (("", "argument --heads: '' names no head"),
                          (" , ", "argument --heads: ' , ' names no head"),
                          ("L0H1,,L0H2", "has an empty label"),
                          ("L0H1,L0H1", "names L0H1 twice"),
                          ("L0H1,L3H6", "--heads: head 'L3H6' out of range: the model has L0-L3, H0-H5")):
        assert main(["ablate", "--model", tiny, "--heads", heads, "--out", out]) == 2
        _one_line(capsys, needle)
    assert main(["sweep", "--model", tiny, "--head", "L9H0", "--prompt", "A dog", "--T", "1",
                 "--field", "0", "--out", out]) == 2
    _one_line(capsys, "--head: head 'L9H0' out of range")


def test_prompt_files_and_tokenizers_checked_before_loading(tmp_path, capsys, tiny, no_load, monkeypatch):
    out = str(tmp_path / "o.h5")
    bad = _prompts(tmp_path, GOOD + "no tabs here\n")
    for cmd in ("gaps", "ablate"):
        assert main([cmd, "--model", tiny, "--prompts", bad, "--out", out]) == 2
        _one_line(capsys, f"--prompts: {bad}:4: expected 3 tab-separated fields")
    rep = _prompts(tmp_path, GOOD + "a b\tx\ty\n", "rep.tsv")
    assert main(["gaps", "--model", tiny, "--prompts", rep, "--out", out]) == 2
    _one_line(capsys, f"{rep}:4: repeats the item of line 1")
    # a folder whose tokenizer files are missing is refused naming it, not blamed on the prompt
    notok = tmp_path / "notok"
    shutil.copytree(tiny, notok)
    for f in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
        (notok / f).unlink(missing_ok=True)
    assert main(["gaps", "--model", str(notok), "--out", out]) == 2
    _one_line(capsys, f"--model: model folder '{notok}' has no tokenizer files")
    assert main(["gaps", "--model", str(tmp_path / "missing"), "--out", out]) == 2
    _one_line(capsys, "--model: model folder", "does not exist")
    assert main(["gaps", "--model", tiny, "--alpha", "5", "--out", out]) == 2
    _one_line(capsys, "argument --alpha: '5': allowed: a number in (0, 1)")
    assert main(["demo", "--alpha", "5", "--out", str(tmp_path / "d")]) == 2
    _one_line(capsys, "--alpha")
    monkeypatch.undo()                                          # the library's own loader says the same
    with pytest.raises(loading.ModelLoadError, match=f"model folder '{notok}' has no tokenizer files"):
        loading.load_model(str(notok))


@pytest.mark.parametrize("argv, needles", [
    (["--seed", "-1"], ["argument --seed: '-1' is out of range; allowed: 0 .. 2**63 - 1"]),
    (["--field", "nan"], ["argument --field: 'nan': allowed: finite field strengths"]),
    (["--T", "0:2:3"], ["argument --T: '0:2:3' gives T = 0.0"]),
    (["--L", "2.7"], ["argument --L: '2.7' is not an integer; allowed: an integer >= 2"]),
    (["--J", "inf"], ["argument --J: 'inf': allowed: a finite number"]),
    (["--algorithm", "overrelax"], ["--algorithm overrelax reflects continuous spins", "ising spins"]),
    (["--system", "xy2d", "--method", "exact"], ["--method exact enumerates finite spin sets", "heisenberg"]),
    (["--chains", "0"], ["argument --chains: '0': allowed: an integer >= 1"]),
    pytest.param(["--device", "cuda"], ["--device cuda: Numba sees no CUDA GPU here"],
                 marks=pytest.mark.skipif(cuda_available(), reason="a CUDA GPU is present")),
    (["--algorithm", "wolff", "--J", "-1"], ["--algorithm wolff needs an isotropic ferromagnetic coupling",
                                             "Identity with J = -1"]),
])
def test_sweep_usage_errors_exit_2_and_write_nothing(tmp_path, capsys, argv, needles):
    out = tmp_path / "s.h5"
    args = ["--system", "ising2d", "--L", "4", "--T", "1:2:3", "--field", "0", "--sweeps", "100"]
    for i in range(0, len(argv), 2):
        if argv[i] in args:
            args[args.index(argv[i]) + 1] = argv[i + 1]
        else:
            args += argv[i:i + 2]
    assert main(["sweep"] + args + ["--out", str(out)]) == 2
    _one_line(capsys, "spinsim sweep: error:", *needles)
    assert not out.exists()


def test_extract_reads_a_bin_checkpoint_that_gaps_loads(tmp_path, capsys):
    import torch

    d = tmp_path / "bin"
    m = gpt2_model()
    m.config.save_pretrained(d)
    torch.save(m.state_dict(), d / "pytorch_model.bin")           # a .bin checkpoint, read weights_only
    for f in gpt2_dir().iterdir():
        if f.name.startswith(("tokenizer", "vocab", "merges", "special")):
            shutil.copy(f, d / f.name)
    assert not list(d.glob("*.safetensors")) and list(d.glob("*.bin"))
    assert main(["extract", "--model", str(d), "--out", str(tmp_path / "h.h5")]) == 0
    assert "max |diff|" in capsys.readouterr().err


def test_resume_refusal_names_the_changed_option(tmp_path, capsys):
    from spinsim.phase.fingerprint import first_difference, solver_options

    base = solver_options("mc", {"sweeps": 2000})
    more = solver_options("mc", {"sweeps": 4000})
    fp = lambda o: [("seed", 1)] + list(o.items())  # noqa: E731
    assert first_difference(fp(base), fp(more)).startswith("'sweeps' differs (file has 2000, this run 4000)")
    assert first_difference(fp(base), fp(solver_options("mc", {"sweeps": 2000, "discard": 7}))) \
        .startswith("'discard' differs")
    out = str(tmp_path / "s.h5")
    run = ["sweep", "--system", "ising1d", "--L", "6", "--T", "1:3:3", "--field", "0", "--method", "exact",
           "--no-progress", "--out", out]
    assert main(run) == 0
    capsys.readouterr()
    run[run.index("--L") + 1] = "7"
    assert main(run) == 2
    _one_line(capsys, "cannot resume: parameter 'L' differs (file has 6, this run 7)", "--overwrite")


def test_errors_are_one_line_and_help_points_to_the_readme(monkeypatch, capsys):
    assert one_line("error: error: bad thing\nTraceback ...") == "bad thing ..."
    from spinsim.commands import info

    def boom(args):
        raise ValueError("error: first line\nsecond line")
    monkeypatch.setattr(info, "run", boom)
    assert main(["info", "x.h5"]) == 1
    assert _one_line(capsys) == "spinsim info: error: first line ..."

    def missing(args):
        raise KeyError("tensor 'wte.weight' is absent")
    monkeypatch.setattr(info, "run", missing)
    assert main(["info", "x.h5"]) == 1
    _one_line(capsys, "KeyError: tensor 'wte.weight' is absent")
    for argv in (["--help"], ["gaps", "--help"], ["sweep", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert "README.md" in text and "SPEC" not in text
    assert main(["sweep", "--bogus"]) == 2
    _one_line(capsys, "spinsim sweep: error: the following arguments are required")


def test_a_mode_left_with_too_few_items_is_a_usage_error(tmp_path, capsys, tiny, monkeypatch):
    """The tiny byte-level BPE splits ' Berlin' into ' ' + 'Berlin': these three items have no
    first-token gap, so the paper mode has nothing to correlate; refused naming the items."""
    p = _prompts(tmp_path, "The capital of France is Paris. The capital of Germany is\tBerlin\tRome\n"
                           "The author of Hamlet was Shakespeare. The author of The Odyssey was\tHomer\tPlato\n"
                           "An apple is a fruit. A carrot is a\tvegetable\tmineral\n")
    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the prompts were checked")
    monkeypatch.setattr(loading, "load_model", refuse)      # the folder's tokenizer is read, not the weights
    for argv in (["gaps", "--mode", "paper", "--out", str(tmp_path / "g.h5")],
                 ["demo", "--quick", "--out", str(tmp_path / "d")]):
        assert main(argv + ["--model", tiny, "--prompts", p, "--quiet"]) == 2
        err = [x for x in capsys.readouterr().err.splitlines() if ": error:" in x]   # among progress lines
        assert len(err) == 1 and err[0].startswith(f"spinsim {argv[0]}: error: --prompts: mode 'paper' (candidates "
                                                   "first): 3 of 3 items excluded"), err
        assert "start with the same token ' '" in err[0] and "--candidates first-differing" in err[0]
    monkeypatch.undo()
    assert main(["gaps", "--mode", "paper", "--candidates", "first-differing", "--model", tiny, "--prompts", p,
                 "--permutations", "20", "--quiet", "--out", str(tmp_path / "g.h5")]) == 0


def test_a_sweep_whose_first_row_fails_leaves_no_file(tmp_path, capsys):
    """Exact enumeration of 144 Ising sites is refused by the solver on the first row: the file
    the sweep had started must not stay behind to block the corrected rerun."""
    out = tmp_path / "s.h5"
    argv = ["sweep", "--system", "ising2d", "--L", "12", "--T", "1:2:2", "--field", "0", "--method", "exact",
            "--quiet", "--out", str(out)]
    assert main(argv) == 1
    line = [x for x in capsys.readouterr().err.splitlines() if ": error:" in x]
    assert len(line) == 1 and "needs 2^144 states" in line[0]
    assert not out.exists()
    argv[argv.index("--L") + 1] = "3"
    assert main(argv) == 0 and out.exists()                  # the corrected rerun is not blocked


def test_validate_compares_the_first_differing_token_when_asked(tmp_path, capsys, tiny):
    import h5py

    from spinsim.analysis.prompts import PromptItem, tokenize_items

    out = tmp_path / "v.h5"
    assert main(["validate", "--model", tiny, "--head", "L0H1", "--prompt", "A dog says", "--correct", "woof",
                 "--wrong", "wolf", "--first-differing", "--T", "1:2:2", "--sweeps", "10", "--device", "cpu",
                 "--quiet", "--out", str(out)]) == 0
    assert "the answers share their first 1 token(s)" in capsys.readouterr().out
    lm = loading.load_model(tiny)
    it = tokenize_items([PromptItem("A dog says", "woof", "wolf")], lm.encode)[0]
    with h5py.File(out) as f:
        assert f.attrs["answer_token_index"] == 1
        assert list(f.attrs["candidate_token_ids"]) == [it.correct_ids[1], it.wrong_ids[1]]
