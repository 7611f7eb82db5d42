"""`spinsim demo` resumes: an interrupted run keeps its finished stages, a rerun reads them back
instead of recomputing them, every file it writes opens with xarray and `spinsim info`, the
resumed demo's outputs are those of a whole demo (test_demo.check_demo_outputs: figures, files,
gaps equal to a fresh `spinsim gaps` run), and a rerun with another parameter is refused naming
it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _figures import record_saved_figures
from _h5layout import check_file
from _tiny_models import llama_dir
from spinsim.analysis import demo_store
from spinsim.cli import main
from test_demo import check_demo_outputs


def test_start_run_records_checks_and_overwrites(tmp_path):
    params = {"weights_sha256": "ab", "sweeps": 300, "quick": False}
    assert demo_store.start_run(tmp_path, params) == []
    assert json.loads((tmp_path / "stages" / "run.json").read_text()) == params
    gaps = demo_store.stage_path(tmp_path, "gaps")
    gaps.write_bytes(b"finished stage")
    assert demo_store.start_run(tmp_path, params) == ["gaps"]
    with pytest.raises(demo_store.DemoMismatchError,
                       match=r"'sweeps' differs \(the kept run has 300, this run 200\); rerun with --overwrite"):
        demo_store.start_run(tmp_path, {**params, "sweeps": 200})
    with pytest.raises(demo_store.DemoMismatchError, match="'seed' is new"):
        demo_store.start_run(tmp_path, {**params, "seed": 1})
    (tmp_path / "phase.h5").write_bytes(b"a sweep")
    assert demo_store.start_run(tmp_path, {**params, "sweeps": 200}, overwrite=True) == []
    assert not gaps.exists() and not (tmp_path / "phase.h5").exists()
    (tmp_path / "stages" / "run.json").unlink()
    gaps.write_bytes(b"orphan")
    with pytest.raises(demo_store.DemoMismatchError, match="without a record of their parameters"):
        demo_store.start_run(tmp_path, params)


def test_a_changed_parameter_is_refused_before_the_model_loads(tmp_path, monkeypatch, capsys):
    import spinsim.models.loading as loading

    params = {"weights_sha256": "ab", "sweeps": 300, "quick": False}
    demo_store.start_run(tmp_path, params)
    demo_store.check_kept_run(tmp_path, {"sweeps": 300, "quick": False})          # the hash is not needed
    with pytest.raises(demo_store.DemoMismatchError, match=r"'sweeps' differs \(the kept run has 300, this run 200\)"):
        demo_store.check_kept_run(tmp_path, {"sweeps": 200, "quick": False})
    demo_store.check_kept_run(tmp_path / "elsewhere", {"sweeps": 200})           # no kept run: nothing to check
    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("the model loaded before the check"))
    out = tmp_path / "demo"
    demo_store.start_run(out, {"weights_sha256": "ab", "prompts": "paper20", "sweeps": 40})
    assert main(["demo", "--out", str(out), "--sweeps", "41", "--quiet"]) == 2
    assert "'sweeps' differs (the kept run has 40, this run 41)" in capsys.readouterr().err


def _argv(out, *extra):
    return ["demo", "--model", str(llama_dir()), "--quick", "--permutations", "300", "--sweeps", "40",
            "--out", str(out), "--seed", "4", "--device", "cpu", "--quiet", *extra]


@pytest.mark.slow
def test_interrupted_demo_resumes_without_redoing_finished_stages_to_a_whole_demo(tmp_path, monkeypatch, capsys):
    import spinsim.analysis.ablation as ablation
    import spinsim.analysis.ground_study as ground_study
    import spinsim.analysis.study as study
    import spinsim.analysis.validate as validate
    import spinsim.phase as phase

    out = tmp_path / "demo"
    real_ground = ground_study.ground_study

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ground_study, "ground_study", interrupted)       # Ctrl-C in the last stage
    assert main(_argv(out)) == 130
    kept = {s: demo_store.stage_path(out, s) for s in demo_store.STAGE_FILES}
    assert all(kept[s].is_file() for s in ("gaps", "ablation", "phase", "validate"))
    assert not kept["ground"].exists() and not (out / "study.h5").exists()
    before = {s: kept[s].stat().st_mtime_ns for s in ("gaps", "ablation", "phase", "validate")}

    def redone(*a, **k):
        raise AssertionError("a finished stage was computed again")

    for mod, name in ((study, "run_gap_study"), (ablation, "ablation_study"), (validate, "validate_candidates"),
                      (phase, "sweep")):
        monkeypatch.setattr(mod, name, redone)
    monkeypatch.setattr(ground_study, "ground_study", real_ground)
    capsys.readouterr()
    saved = record_saved_figures(monkeypatch)
    assert main(_argv(out)) == 0
    err = capsys.readouterr().err
    assert "resuming: kept from the previous run: gaps, ablation, validate" in err
    assert {s: kept[s].stat().st_mtime_ns for s in before} == before
    for path in sorted(out.rglob("*.h5")):                               # every file the demo writes
        check_file(path, capsys)
    import h5py

    with h5py.File(out / "study.h5") as a, h5py.File(kept["gaps"]) as g:
        np.testing.assert_array_equal(a["corrected/stats/fwer_p"][()], g["corrected/stats/fwer_p"][()])
        assert a["phase/sweep/done"][()].all() and a["ground/E0"].shape == (3, 4)
    monkeypatch.undo()                         # the stages' functions back: the fresh gaps run below
    check_demo_outputs(out, saved, str(llama_dir()), tmp_path, capsys)
    assert main(_argv(out, "--sweeps", "41")) == 2
    assert "'sweeps' differs (the kept run has 40, this run 41)" in capsys.readouterr().err
