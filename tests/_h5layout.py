"""Checks shared by the file-layout tests: a spinsim HDF5 file opens with ``spinsim info``, every
dataset's dimension scales resolve and are described, and xarray (h5netcdf) opens it."""
from __future__ import annotations

from pathlib import Path

import h5py

from spinsim.cli import main


def layout_problems(path: str | Path) -> list[str]:
    """Every defect of the file's layout, one line each: a dataset without ``units`` or
    ``long_name``; a dimension whose scales cannot be iterated (dangling references); an attached
    scale that is not a dimension scale of this file or lacks ``units`` or ``long_name``."""
    problems: list[str] = []

    def visit(name: str, obj: object) -> None:
        if not isinstance(obj, h5py.Dataset):
            return
        for key in ("units", "long_name"):
            if key not in obj.attrs:
                problems.append(f"/{name}: no {key!r} attribute")
        for i in range(obj.ndim):
            try:
                scales = list(obj.dims[i].values())
            except Exception as exc:                       # noqa: BLE001  (h5py raises RuntimeError/KeyError)
                problems.append(f"/{name}: dimension {i} has dangling scales ({type(exc).__name__})")
                continue
            for s in scales:
                if s.name is None or s.name not in obj.file or not s.is_scale:
                    problems.append(f"/{name}: dimension {i} attached to {s.name!r}, not a scale of this file")
                    continue
                for key in ("units", "long_name"):
                    if key not in s.attrs:
                        problems.append(f"/{name}: scale {s.name} has no {key!r} attribute")

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return problems


def check_file(path: str | Path, capsys=None) -> None:
    """Assert that ``path`` has no layout problems, that ``spinsim info`` reads it, and (when
    xarray and h5netcdf import) that ``xarray.open_datatree(path, engine="h5netcdf")`` opens it."""
    assert layout_problems(path) == [], f"{path}: {layout_problems(path)}"
    assert main(["info", str(path)]) == 0, f"spinsim info {path} failed"
    if capsys is not None:
        capsys.readouterr()
    try:
        import xarray as xr
        import h5netcdf  # noqa: F401
    except ImportError:
        return
    tree = xr.open_datatree(str(path), engine="h5netcdf")
    try:
        assert tree.groups
    finally:
        tree.close()
