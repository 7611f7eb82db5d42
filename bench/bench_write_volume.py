"""Bytes written by checkpoints and sweep commits (issue 13 review item 10).

1. Checkpoints: one Monte Carlo run saving at every ~1 % (``checkpoint_interval=0``); the bytes
   the atomic writer wrote plus those appended in place to the series file, against the bytes
   the former scheme wrote (the whole state, series included, at every save: saves x (state file
   + series file), plus the forced save at the end).
2. Sweep commits: one Monte Carlo sweep without row checkpoints; the bytes of every commit of
   the sweep file and of the rows' sample files, against the former scheme (every commit held
   every row's samples: the same commits plus the samples' size each, before the last).

Counts come from wrapping :func:`spinsim.atomic._write_file` and the series append; no timing.

Usage: python bench/bench_write_volume.py [--out bench/results/write_volume.json]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

import spinsim as ss
import spinsim.atomic as atomic
from spinsim.checkpoint import Checkpointer

_written: list[tuple[str, int]] = []
_real_write = atomic._write_file


def _count(tmp: Path, data: memoryview) -> None:
    _written.append((Path(tmp).name, len(data)))
    _real_write(tmp, data)


def checkpoint_volume() -> dict[str, float]:
    appended = [0]
    real = Checkpointer._save_series

    def save_series(self, state, measured):          # count the in-place appends
        before = self._written
        real(self, state, measured)
        if before is not None:
            appended[0] += sum(state[n][..., before:measured].nbytes for n in self.series)
    Checkpointer._save_series = save_series
    saves = [0]
    real_save = Checkpointer.save

    def save(self, *a):
        saves[0] += 1
        real_save(self, *a)
    Checkpointer.save = save
    try:
        _written.clear()
        with tempfile.TemporaryDirectory() as d:
            ck = Path(d) / "c.h5"
            ss.solve(ss.lattice("ising", (8, 8)), np.linspace(1.5, 3.5, 16), method="mc", sweeps=2000, n_chains=4,
                     seed=1, progress=False, checkpoint=ck, checkpoint_interval=0)
            state, series = ck.stat().st_size, (Path(d) / "c.h5.series").stat().st_size
    finally:
        Checkpointer._save_series, Checkpointer.save = real, real_save
    new = sum(n for _, n in _written) + appended[0]
    old = (saves[0] + 1) * (state + series)
    return {"saves": saves[0], "state_file_MB": state / 1e6, "series_file_MB": series / 1e6,
            "written_MB": new / 1e6, "former_scheme_MB": old / 1e6}


def sweep_volume() -> dict[str, float]:
    _written.clear()
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "s.h5"
        ss.sweep(ss.lattice("ising", (4, 4)), np.linspace(1.5, 3.5, 16), np.linspace(0.0, 0.7, 8), out=out,
                 method="mc", sweeps=2000, n_chains=4, seed=1, progress=False, estimate=False,
                 checkpoint_interval=None)
        with h5py.File(out) as f:
            samples = sum(f["sweep"][n].nbytes for n in f["sweep"] if n.startswith("sample_"))
    commits = [n for name, n in _written if name.startswith(".s.h5.tmp")]
    rows = [n for name, n in _written if not name.startswith(".s.h5.tmp")]
    new = sum(commits) + sum(rows)
    old = sum(commits) + (len(commits) - 1) * samples
    return {"commits": len(commits), "row_sample_files": len(rows), "samples_MB": samples / 1e6,
            "written_MB": new / 1e6, "former_scheme_MB": old / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    atomic._write_file = _count
    res = {"checkpoint": checkpoint_volume(), "sweep": sweep_volume()}
    print(json.dumps(res, indent=2))
    if args.out:
        os.makedirs(Path(args.out).parent, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
