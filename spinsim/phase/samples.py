"""The thinned samples of an unfinished Monte Carlo sweep: one file per finished row beside the
sweep file, so that a row commit writes its own samples once instead of rewriting every row's.

The samples (:mod:`spinsim.bins`: E, |m|, m.u of every chain, thinned; by far the largest part
of a sweep file, e.g. ~50 MB for 32 fields x 16 temperatures x 4 chains) are written, for a
sweep that is not complete, to ``.<name>.samples/row-<k>.h5`` (kind ``"sweep-samples"``:
``sample_<name>`` over (T, chain, sample), attributes ``field_index``, ``sample_stride``,
``samples_per_bin``), each once, through the atomic writer, just before the commit that marks
row k done. The sweep file then holds everything else (the bins too) and, in ``/sweep``, the
attribute ``samples_pending`` (the folder's name, beside the file). The commit that completes
the sweep writes every row's samples into the sweep file (``/sweep/sample_<name>``, as for a
sweep run in one go) and removes the folder. :func:`spinsim.phase.read_sweep` merges the rows'
files into ``res.bins.samples``, so an unfinished sweep reweights as a finished one; a reader
without spinsim sees the samples of an unfinished sweep in the row files.

Crash safety: a row file is complete before the commit that marks its row done (a kill between
the two leaves a file for a row not done, which is ignored and rewritten); the folder is removed
only after the complete file has replaced the old one.
"""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..bins import SAMPLE_FIELDS, Bins
from ..io import SpinsimFileError, atomic_h5, from_attr, open_spinsim, root_attrs

__all__ = ["KIND", "ATTR", "samples_folder", "write_rows", "mark_pending", "merge_rows", "lost_rows",
           "check_none_lost", "remove"]

KIND = "sweep-samples"
#: /sweep attribute of an unfinished sweep whose samples are in the folder it names
ATTR = "samples_pending"


def samples_folder(path: str | Path) -> Path:
    """``.<name>.samples`` beside the sweep file ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.samples")


def _row_file(folder: Path, k: int) -> Path:
    return folder / f"row-{k}.h5"


def write_rows(path: Path, bins: Bins, done: np.ndarray, written: set[int]) -> None:
    """Write the samples of every done row not in ``written`` (rows whose files exist) to its row
    file, and add it to ``written``."""
    folder = samples_folder(path)
    for k in np.flatnonzero(done):
        k = int(k)
        if k in written:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_h5(_row_file(folder, k)) as f:
            for a, v in root_attrs(KIND, field_index=k, sample_stride=bins.sample_stride,
                                   samples_per_bin=bins.samples_per_bin).items():
                f.attrs[a] = v
            for name, v in bins.samples.items():
                d = f.create_dataset("sample_" + name, data=v[k])
                d.attrs["units"], d.attrs["long_name"] = SAMPLE_FIELDS[name]
                d.attrs["dims"] = "T, chain, sample"
        written.add(k)


def mark_pending(g: Any, path: Path, bins: Bins) -> None:
    """Attributes of the sweep group ``g`` of an unfinished sweep: where its samples are, their
    length per chain, stride and samples per bin (so a reader can place them)."""
    g.attrs[ATTR] = samples_folder(path).name
    g.attrs["samples_per_chain"] = int(next(iter(bins.samples.values())).shape[-1])
    g.attrs["sample_stride"] = bins.sample_stride
    g.attrs["samples_per_bin"] = bins.samples_per_bin


def merge_rows(path: Path, g: Any, bins: Bins | None, done: np.ndarray) -> tuple[Bins | None, set[int]]:
    """``bins`` with the samples of the done rows whose files are in the folder named by the
    sweep group ``g`` (NaN for the other rows, and for a done row whose file is lost), and the set
    of the rows read; ``bins`` unchanged when ``g`` has no pending samples."""
    if bins is None or ATTR not in g.attrs:
        return bins, set()
    folder = Path(path).parent / str(from_attr(g.attrs[ATTR]))
    n_s = int(g.attrs["samples_per_chain"])
    samples = {n: np.full(bins.grid_shape + (bins.n_chains, n_s), np.nan) for n in SAMPLE_FIELDS}
    read = set()
    for k in np.flatnonzero(done):
        with contextlib.suppress(SpinsimFileError, KeyError, OSError, ValueError):
            with open_spinsim(_row_file(folder, int(k)), kind=KIND) as f:
                row = {n: f["sample_" + n][()] for n in SAMPLE_FIELDS}
            for n in SAMPLE_FIELDS:
                samples[n][k] = row[n]
            read.add(int(k))
    return (Bins(bins.bins, bins.E_shift, bins.bin_length, samples, int(g.attrs["sample_stride"]),
                 int(g.attrs["samples_per_bin"])), read)


def lost_rows(bins: Bins | None, done: np.ndarray, on_disk: set[int]) -> list[int]:
    """Done rows whose samples are neither in memory nor in their row file: finite bins (so the
    row was measured with samples) but NaN samples and no file read (a lost or damaged folder)."""
    if bins is None or not bins.has_samples:
        return []
    E = bins.samples["E"]
    lost = []
    for k in np.flatnonzero(done):
        k = int(k)
        if k not in on_disk and np.all(np.isnan(E[k])) and np.any(np.isfinite(bins.bins["E"][k])):
            lost.append(k)
    return lost


def check_none_lost(path: Path, bins: Bins | None, done: np.ndarray, on_disk: set[int]) -> None:
    """Raise :class:`spinsim.io.InconsistentFileError` before a commit would store NaN in place of
    the samples of finished rows whose row files are gone (the folder was not copied or moved with
    the file, or the file was renamed): naming the rows, the folder and how to go on."""
    from ..io import InconsistentFileError

    lost = lost_rows(bins, done, on_disk)
    if lost:
        raise InconsistentFileError(
            f"{path}: the thinned samples of finished row(s) {lost} were kept beside the file in "
            f"{samples_folder(path).name}/ and are missing or damaged there (the folder is named after the file: "
            "copy, move or rename the two together); put the folder back, or rerun with --overwrite (the "
            "samples cannot be recomputed without rerunning those rows)")


def remove(path: str | Path) -> None:
    """Remove the samples folder of the sweep file ``path`` (absent: nothing to do)."""
    shutil.rmtree(samples_folder(path), ignore_errors=True)
