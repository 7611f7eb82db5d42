"""Summarise any spinsim HDF5 file: root attributes, groups and datasets (shapes, dimensions,
units), the completion of a sweep or an atlas (read and checked by their readers), result tables
and phase boundaries.

Examples:
  spinsim info s.h5
  spinsim info result.h5 --attrs all

A file that is not spinsim's, or is truncated, gives a one-line error and exit code 1.
"""
from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..cli import add_common

HELP = "print a readable summary of a spinsim HDF5 file (sweep, result, extraction ...)"

_MAIN_ATTRS = ("spinsim_version", "spinsim_kind", "created", "command_line", "seed", "method",
               "hamiltonian_name", "spin_kind", "n_sites", "n_comp", "n_free", "coupling",
               "hamiltonian_sha256", "model_id", "weights_sha256", "head", "prompt", "direction",
               "sign_convention", "k_B", "head_naming")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a spinsim HDF5 file")
    p.add_argument("--attrs", choices=("main", "all"), default="main",
                   help="root attributes to show: the main ones (default) or all")
    p.add_argument("--max-rows", type=int, default=40, help="rows of result tables to print (default 40)")
    add_common(p, out_default=False)


def _fmt_attr(v: Any, width: int = 100) -> str:
    from ..io import from_attr
    v = from_attr(v)
    if isinstance(v, np.ndarray):
        s = np.array2string(v, threshold=8, precision=6, max_line_width=width)
    elif isinstance(v, float):
        s = f"{v:.6g}"
    else:
        s = str(v)
    s = s.replace("\n", " ")
    return s if len(s) <= width else s[:width - 3] + "..."


def _dataset_line(name: str, d: Any) -> str:
    from ..io import from_attr
    dims = d.attrs.get("dims")
    if dims is not None:
        dims = [x.decode() if isinstance(x, bytes) else str(x) for x in dims]
    elif d.ndim and all(len(d.dims[i].keys()) for i in range(d.ndim)):
        dims = [d.dims[i].label or list(d.dims[i].keys())[0] for i in range(d.ndim)]
    shape = "(" + ", ".join(f"{dn}={n}" for dn, n in zip(dims, d.shape)) + ")" if dims and len(dims) == d.ndim \
        else str(d.shape)
    units = from_attr(d.attrs.get("units"))
    scale = " [scale]" if d.attrs.get("CLASS") == b"DIMENSION_SCALE" else ""
    extra = ""
    if d.ndim == 1 and 0 < d.size <= 6 and d.dtype.kind in "fiu":
        extra = "  " + np.array2string(d[()], precision=4, separator=", ")
    elif d.ndim >= 1 and d.dtype.kind in "fiu" and 6 < d.size <= 5_000_000:
        a = np.asarray(d[()], dtype=np.float64)
        fin = a[np.isfinite(a)]
        n_nan = a.size - fin.size
        extra = (f"  range {fin.min():.4g} .. {fin.max():.4g}" if fin.size else "  all NaN") + \
            (f" ({n_nan} NaN)" if fin.size and n_nan else "")
    u = f"  [{units}]" if units else ""
    return f"  {name:<36} {str(d.dtype):<8} {shape}{u}{scale}{extra}"


def _shape_of(g: Any) -> tuple:
    import h5py
    return tuple(sorted((k, v.shape if isinstance(v, h5py.Dataset) else "group") for k, v in g.items()))


def _walk(g: Any, prefix: str, max_alike: int = 3) -> None:
    """Print a group's tree; runs of many sibling groups with the same layout (heads/L0H0 ...)
    are shown once and counted."""
    import h5py
    items = list(g.items())
    subgroups = [(k, v) for k, v in items if isinstance(v, h5py.Group)]
    alike: dict[tuple, list[str]] = {}
    for k, v in subgroups:
        alike.setdefault(_shape_of(v), []).append(k)
    shown: set[str] = set()
    for names in alike.values():
        shown.update(names[:max_alike] if len(names) > max_alike + 1 else names)
    for k, v in items:
        name = f"{prefix}{k}"
        if isinstance(v, h5py.Group):
            if k not in shown:
                continue
            print(f"  {name}/")
            _walk(v, name + "/", max_alike)
            names = alike[_shape_of(v)]
            if len(names) > max_alike + 1 and k == names[max_alike - 1]:
                print(f"  {prefix}... {len(names) - max_alike} more groups laid out like {name}/ "
                      f"({names[max_alike]} .. {names[-1]})")
        else:
            print(_dataset_line(name, v))


def _sweep_summary(sw: Any) -> list[str]:
    """Completion, grid and the chi maximum per finished row of a :class:`SweepResult`."""
    done, T, h = sw.done, sw.T, sw.h
    lines = [f"sweep: {int(done.sum())} of {done.size} field rows done ({100 * sw.fraction_done:.0f}%)"
             + ("" if sw.complete else "  -> rerun the same command to resume")]
    lines.append(f"  grid: T {T.min():.4g}..{T.max():.4g} ({T.size} points) x h {h.min():.4g}..{h.max():.4g} "
                 f"({h.size} points)")
    if not sw.complete:
        lines.append("  missing rows at h = " + ", ".join(f"{x:.4g}" for x in h[~done][:12])
                     + (" ..." if (~done).sum() > 12 else ""))
    if sw.susceptibility is not None and done.any():
        chi, m = sw.susceptibility, sw.magnetization
        lines.append(f"  {'h':>10} {'T at max chi':>14} {'max chi':>12} {'max <|m|>':>10}")
        for k in np.flatnonzero(done)[:20]:
            j = int(np.nanargmax(chi[k]))
            m_max = np.nanmax(m[k]) if m is not None else float("nan")
            lines.append(f"  {h[k]:>10.4g} {T[j]:>14.4g} {chi[k, j]:>12.4g} {m_max:>10.4g}")
    return lines


def _boundary_summary(boundaries: dict[str, Any]) -> list[str]:
    """One line per :class:`spinsim.result.Boundary`: its method and its finite points."""
    lines = ["boundaries:"]
    for name, b in boundaries.items():
        lines.append(f"  {name}: {b.method}")
        ok = np.isfinite(b.T) & np.isfinite(b.h)
        err = b.T_err if b.T_err is not None else None
        pts = [f"(h={b.h[i]:.3g}, T={b.T[i]:.4g}" + (f"+-{err[i]:.2g})" if err is not None else ")")
               for i in np.flatnonzero(ok)]
        lines.append(f"    {int(ok.sum())} of {b.T.size} points: "
                     + (", ".join(pts[:6]) + (" ..." if len(pts) > 6 else "") if pts else "none (see description)"))
    return lines


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except BrokenPipeError:        # `spinsim info f.h5 | head`: stop quietly
        import os
        import sys
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    import h5py

    from ..io import open_spinsim
    from ..phase import read_sweep
    from ..result import Result

    with open_spinsim(args.file) as f:
        print(f"{args.file}: spinsim {_fmt_attr(f.attrs.get('spinsim_kind', '?'))} file "
              f"(spinsim {_fmt_attr(f.attrs['spinsim_version'])})")
        keys = list(f.attrs.keys()) if args.attrs == "all" else [k for k in _MAIN_ATTRS if k in f.attrs]
        if args.attrs == "main":
            keys += sorted(k for k in f.attrs.keys() if k.startswith("solver_") and k not in keys)
        for k in keys:
            print(f"  {k:<24} {_fmt_attr(f.attrs[k])}")
        hidden = len(f.attrs) - len(keys)
        if hidden > 0:
            print(f"  ... {hidden} more attributes (--attrs all)")
        print("contents:")

        _walk(f, "")
        is_sweep = "sweep" in f
        is_atlas = "atlas" in f
        result_groups = []
        if "result" in f:
            result_groups.append("result")
        for name, g in f.items():
            if isinstance(g, h5py.Group) and name != "result" and "energy" in g and "T" in g \
                    and g["energy"].ndim == 1:
                result_groups.append(name)
    if is_sweep:                  # read through the phase store, the one reader of the layout
        sw = read_sweep(args.file)
        print("\n".join(_sweep_summary(sw)))
        if sw.boundaries:
            print("\n".join(_boundary_summary(sw.boundaries)))
    if is_atlas:                  # read (and checked) through the atlas store, the one reader of the layout
        from ..analysis.atlas_store import read_atlas
        print("\n".join(read_atlas(args.file).info_lines()))
    for name in result_groups:
        res = Result.from_hdf5(args.file, group=name)
        rows = res.summary().splitlines()
        print(f"{name}:")
        limit = max(args.max_rows, 1) + 2
        print("\n".join("  " + r for r in rows[:limit]))
        if len(rows) > limit:
            print(f"  ... {len(rows) - limit} more rows (--max-rows)")
    return 0
