"""Executors: a concurrent.futures executor, a Dask Client and the Dask runner give the same sweep
file as the local run, even when a worker dies mid-run."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import spinsim as ss
from spinsim.executors import as_runner, dask_executor, make_executor
from spinsim.phase import read_sweep, run_task, sweep

T = np.array([1.8, 2.3, 2.8])
FIELDS = np.array([0.0, 0.1, 0.2, 0.4, 0.6, 0.8])
KW = dict(algorithm="heatbath", sweeps=400, discard=100, backend="cpu")


def _same_data(a, b):
    assert np.array_equal(a.done, b.done) and a.done.all()
    assert set(a.data) == set(b.data)
    for name in a.data:
        assert np.array_equal(a.data[name], b.data[name], equal_nan=True), name
    assert np.array_equal(a.magnetization_vector, b.magnetization_vector, equal_nan=True)


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("distributed")     # only the Dask runs need it (the checks below do not)
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as lc, Client(lc) as client:
        yield client


@pytest.fixture(scope="module")
def local_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("local") / "s.h5"
    sweep(ss.lattice("ising", (6, 6)), T, FIELDS, out=p, seed=3, progress=False, **KW)
    return read_sweep(p)


@pytest.mark.slow
def test_dask_sweep_equals_local_sweep_bit_for_bit(cluster, local_file, tmp_path):
    p = tmp_path / "d.h5"
    sweep(ss.lattice("ising", (6, 6)), T, FIELDS, out=p, seed=3, progress=False,
             executor=dask_executor(run_task, client=cluster), **KW)
    _same_data(read_sweep(p), local_file)


@pytest.mark.slow
def test_dask_client_as_executor_equals_local_sweep(cluster, local_file, tmp_path):
    """The Client itself is an executor (no spinsim wrapper to import)."""
    p = tmp_path / "c.h5"
    sweep(ss.lattice("ising", (6, 6)), T, FIELDS, out=p, seed=3, progress=False, executor=cluster, **KW)
    _same_data(read_sweep(p), local_file)


def test_thread_pool_executor_equals_local_sweep(local_file, tmp_path):
    """Any concurrent.futures.Executor runs the rows; the file equals the serial run's bit for bit."""
    from concurrent.futures import ThreadPoolExecutor

    p = tmp_path / "t.h5"
    with ThreadPoolExecutor(2) as pool:
        sweep(ss.lattice("ising", (6, 6)), T, FIELDS, out=p, seed=3, progress=False, executor=pool, **KW)
    _same_data(read_sweep(p), local_file)


def test_as_runner_accepts_executors_and_refuses_others():
    from concurrent.futures import ThreadPoolExecutor

    square = lambda x: x * x  # noqa: E731
    assert list(as_runner(None, square)([1, 2, 3])) == [1, 4, 9]
    with ThreadPoolExecutor(2) as pool:
        assert sorted(as_runner(pool, square)([1, 2, 3])) == [1, 4, 9]
    runner = lambda tasks: (t + 1 for t in tasks)  # noqa: E731
    assert as_runner(runner, square) is runner
    with pytest.raises(TypeError, match="executor must be None, a concurrent.futures.Executor.*got int"):
        as_runner(3, square)


@pytest.mark.slow
def test_killed_worker_costs_only_its_task(cluster, local_file, tmp_path):
    """Kill one worker process (SIGKILL) after the first row arrives: Dask reruns the lost task
    on a restarted worker and the file ends complete and identical to the local run."""
    inner = dask_executor(run_task, client=cluster)
    killed = []

    def killing_executor(tasks):
        for i, row in enumerate(inner(tasks)):
            if i == 0:
                pids = cluster.run(os.getpid)
                victim = sorted(pids.values())[0]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
            yield row

    p = tmp_path / "k.h5"
    sweep(ss.lattice("ising", (6, 6)), T, FIELDS, out=p, seed=3, progress=False,
             executor=killing_executor, **KW)
    assert killed
    _same_data(read_sweep(p), local_file)


def test_make_executor_choices():
    assert make_executor("local", run_task) is None
    with pytest.raises(ValueError, match="unknown executor 'spark'"):
        make_executor("spark", run_task)
    with pytest.raises(ValueError, match="needs --scheduler"):
        make_executor("dask", run_task)
    with pytest.raises(ValueError, match="only meaningful with --executor dask"):
        make_executor("local", run_task, scheduler="tcp://x:1")


@pytest.mark.slow
def test_gaps_ablation_on_dask_equals_local(cluster, tmp_path):
    """`spinsim gaps --ablation zero --executor dask` writes the same ablation arrays as locally, to
    float32 rounding (the workers' torch runs single-threaded, which changes reduction order)."""
    import h5py

    from _tiny_models import llama_dir
    from spinsim.cli import main

    model = str(llama_dir())
    a, b = tmp_path / "local.h5", tmp_path / "dask.h5"
    assert main(["gaps", "--model", model, "--permutations", "50", "--ablation", "zero", "--out", str(a)]) == 0
    assert main(["gaps", "--model", model, "--permutations", "50", "--ablation", "zero", "--out", str(b),
                 "--executor", "dask", "--scheduler", cluster.scheduler.address]) == 0
    with h5py.File(a) as fa, h5py.File(b) as fb:
        for ds in ("ablation/clean", "ablation/zero/measured", "ablation/zero/predicted", "corrected/stats/fwer_p"):
            np.testing.assert_allclose(fa[ds][()], fb[ds][()], rtol=1e-5, atol=2e-6, err_msg=ds)


def test_gaps_executor_usage_errors(tmp_path, capsys):
    from spinsim.cli import main

    assert main(["gaps", "--executor", "dask", "--out", str(tmp_path / "x.h5")]) == 2
    assert capsys.readouterr().err.strip() == ("spinsim gaps: error: --executor dask needs --scheduler "
                                               "ADDRESS (e.g. tcp://10.0.0.5:8786)")
    assert main(["gaps", "--scheduler", "tcp://x:1", "--out", str(tmp_path / "x.h5")]) == 2
    assert capsys.readouterr().err.strip() == ("spinsim gaps: error: --scheduler is only meaningful "
                                               "with --executor dask")
    assert not (tmp_path / "x.h5").exists()
