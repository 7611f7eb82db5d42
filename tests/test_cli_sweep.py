"""``spinsim sweep``, ``spinsim info`` and ``spinsim plot``: help with examples, exit codes 0/1/2 and
one-line errors naming the bad value."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from spinsim.cli import main

RUN = ["sweep", "--system", "ising2d", "--L", "4", "--T", "1.5:3.5:3", "--field", "0:0.4:3",
       "--sweeps", "200", "--seed", "5", "--no-progress"]


def one_line_error(err: str, *needles: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@pytest.mark.parametrize("cmd", ["sweep", "info", "plot"])
def test_help_has_an_example(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "Example" in out and f"spinsim {cmd} " in out
    for opt in ("--seed", "--device"):
        assert opt in out


def test_sweep_info_plot_exit_0(tmp_path, capsys):
    out = tmp_path / "s.h5"
    assert main(RUN + ["--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "spinsim sweep file" in text and "3 of 3 field rows done (100%)" in text
    assert "sweep/susceptibility" in text and "(h=3, T=3)" in text and "chi_peak" in text
    assert main(["plot", str(out), "--out", str(tmp_path / "figs")]) == 0
    import matplotlib.image as mpimg

    from spinsim.analysis.figures import phase_diagrams
    from spinsim.phase import read_sweep

    img = mpimg.imread(tmp_path / "figs" / "s_phase_diagram.png")
    assert img.shape[1] > img.shape[0] > 200 and img[..., :3].std() > 0.05     # three panels, not blank
    fig = phase_diagrams(read_sweep(out))                    # what the PNG shows: from the file
    assert fig.axes[0].get_xlabel().startswith("temperature")
    assert "peak" in " ".join(t.get_text() for t in fig.legends[0].get_texts())   # the stored chi peak


def test_info_reports_an_unfinished_sweep(tmp_path, capsys):
    from spinsim.phase import read_sweep
    from spinsim.phase.store import commit

    out = tmp_path / "s.h5"
    assert main(RUN + ["--out", str(out)]) == 0
    st = read_sweep(out)
    st.done[1:] = False
    st.boundaries = {}
    commit(out, st)
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "1 of 3 field rows done (33%)  -> rerun the same command to resume" in capsys.readouterr().out


def test_info_on_a_result_file(tmp_path, capsys):
    import spinsim as ss

    p = tmp_path / "r.h5"
    ss.solve(ss.lattice("ising", (3, 3)), [1.0, 2.0], method="exact").to_hdf5(p)
    assert main(["info", str(p)]) == 0
    out = capsys.readouterr().out
    assert "spinsim result file" in out and "result:" in out and "E/N" in out


@pytest.mark.parametrize("args, needles", [
    (["--T", "1.5:3.5"], ["--T", "'1.5:3.5'", "start:stop:count"]),
    (["--T", "0:2:3"], ["--T", "'0:2:3'", "> 0"]),
    (["--field", "0:x:3"], ["--field", "'0:x:3'"]),
    (["--field", "0:1:0"], ["--field", "count must be >= 1"]),
    (["--L", "1"], ["--L", "1", ">= 2"]),
    (["--sweeps", "1"], ["--sweeps", "1"]),
    (["--direction", "up"], ["--direction", "'up'", "top_eigenvector"]),
    (["--algorithm", "wolff"], ["wolff", "zero field"]),
])
def test_bad_values_exit_2_naming_the_value(tmp_path, capsys, args, needles):
    argv = list(RUN) + ["--out", str(tmp_path / "s.h5")]
    for i in range(0, len(args), 2):
        k = argv.index(args[i]) if args[i] in argv else None
        if k is None:
            argv += args[i:i + 2]
        else:
            argv[k + 1] = args[i + 1]
    assert main(argv) == 2
    one_line_error(capsys.readouterr().err, "spinsim sweep: error:", *needles)
    assert not (tmp_path / "s.h5").exists()


def test_unknown_system_is_an_argparse_usage_error(capsys):
    assert main(["sweep", "--system", "potts2d", "--T", "1", "--field", "0", "--out", "x.h5"]) == 2
    one_line_error(capsys.readouterr().err, "spinsim sweep: error: argument --system: invalid choice: 'potts2d'")


@pytest.mark.parametrize("args, needle", [
    (["--model", "gpt2", "--prompt", "Hi"], "--model needs --head L{layer}H{head} and --prompt"),
    (["--model", "gpt2", "--head", "L3H5"], "--model needs --head L{layer}H{head} and --prompt"),
    (["--system", "ising2d", "--head", "L3H5"], "--head and --prompt go with --model"),
])
def test_model_options_are_checked_before_loading(tmp_path, capsys, args, needle):
    rc = main(["sweep", *args, "--T", "1:2:2", "--field", "0:1:2", "--out", str(tmp_path / "h.h5")])
    assert rc == 2
    one_line_error(capsys.readouterr().err, "spinsim sweep: error:", needle)
    assert not (tmp_path / "h.h5").exists()


def test_sweep_writes_the_boundaries_into_the_file(tmp_path, capsys):
    """The command computes the phase boundaries (analysis) and stores them through the phase
    store: the file holds /boundary/chi_peak, and stderr reports the h = 0 chi peak from it."""
    from spinsim.phase import read_sweep

    out = tmp_path / "s.h5"
    assert main(RUN + ["--out", str(out)]) == 0
    err = capsys.readouterr().err
    chi = read_sweep(out).boundaries["chi_peak"]
    assert chi.param == "h" and chi.T.shape == (3,) and "peak" in chi.method
    assert f"chi peak at h = 0: T = {chi.T[0]:.4f} +- {chi.T_err[0]:.4f}" in err


@pytest.mark.slow
def test_model_sweep_of_a_tiny_gpt2_head(tmp_path, capsys):
    """--model/--head/--prompt: a head's (T, h) sweep along the prompt field, end to end."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from _tiny_models import gpt2_dir

    from spinsim.phase import read_sweep

    out = tmp_path / "head.h5"
    rc = main(["sweep", "--model", str(gpt2_dir()), "--head", "L1H2", "--prompt", "A dog says woof. A cat says",
               "--input", "embed", "--T", "0.5:4:3", "--field", "0:2:2", "--sweeps", "100", "--no-progress",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    sw = read_sweep(out)
    assert sw.complete and sw.attrs["head"] == "L1H2" and sw.attrs["input_mode"] == "embed"
    assert sw.attrs["weights_sha256"] and sw.attrs["direction"].startswith("prompt")
    nrm = np.linalg.norm(sw.direction, axis=1)
    np.testing.assert_allclose(nrm, 1.0)
    assert main(["plot", str(out), "--out", str(tmp_path / "figs")]) == 0
    assert (tmp_path / "figs" / "head_phase_diagram.png").exists()


def test_system_and_model_together_exit_2(tmp_path, capsys):
    assert main(RUN + ["--model", "gpt2", "--out", str(tmp_path / "s.h5")]) == 2
    one_line_error(capsys.readouterr().err, "exactly one of --system")


def test_mismatched_resume_exits_2_naming_the_parameter(tmp_path, capsys):
    out = str(tmp_path / "s.h5")
    assert main(RUN + ["--out", out]) == 0
    capsys.readouterr()
    argv = list(RUN) + ["--out", out]
    argv[argv.index("--seed") + 1] = "6"
    assert main(argv) == 2
    one_line_error(capsys.readouterr().err, "cannot resume: parameter 'seed' differs (file has 5, this run 6)",
                   "--overwrite")
    assert main(argv + ["--overwrite"]) == 0


@pytest.mark.parametrize("cmd", ["info", "plot"])
def test_foreign_truncated_and_missing_files_exit_1(tmp_path, capsys, cmd):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    good = tmp_path / "s.h5"
    assert main(RUN + ["--out", str(good)]) == 0
    truncated = tmp_path / "cut.h5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    capsys.readouterr()
    extra = ["--out", str(tmp_path / "figs")] if cmd == "plot" else []
    for path, needle in ((foreign, "not written by spinsim"), (truncated, "truncated"),
                         (text, "not a readable HDF5"), (tmp_path / "none.h5", "no such file")):
        assert main([cmd, str(path)] + extra) == 1
        one_line_error(capsys.readouterr().err, f"spinsim {cmd}: error:", str(path), needle)
