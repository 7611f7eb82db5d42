"""One API for every solver: ``solve(H, T, method=..., backend=..., seed=..., ...) -> Result``.

Methods: ``"exact"`` (enumeration of finite state spaces), ``"analytic"`` (closed forms where
they exist), ``"mc"`` (Monte Carlo; backends ``"cpu"``, ``"cuda"``, ``"auto"``), ``"ground"``
(zero-temperature minimisation and excitations). Each method lives in its own module and
registers itself here.

Modules: ``exact`` (entry and Result) with ``exact_ising``, ``exact_discrete`` and
``exact_levels`` (energy levels, density of states); ``analytic`` (entry, one spin, open chain)
with ``mean_field`` (the mean-field description and line) and ``kaufman`` (the Ising torus);
``ground`` (minima search; the reduction, excitations and probe physics it uses live in
:mod:`spinsim.reduction`, :mod:`spinsim.excitations`, :mod:`spinsim.probe`); ``mc``.
"""
from __future__ import annotations

from typing import Any, Callable

from ..hamiltonian import Hamiltonian
from ..result import Result
from ..validation import check_energy_range, check_temperatures

__all__ = ["solve", "METHODS", "register"]

METHODS: dict[str, Callable[..., Result]] = {}


def register(name: str) -> Callable[[Callable[..., Result]], Callable[..., Result]]:
    def deco(fn: Callable[..., Result]) -> Callable[..., Result]:
        METHODS[name] = fn
        return fn
    return deco


def _load_methods() -> None:
    # imported lazily so that importing spinsim stays cheap and modules register themselves
    import importlib

    for mod in ("exact", "analytic", "mc", "ground"):
        try:
            importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as exc:  # a method module not yet present in this build
            if exc.name != f"{__name__}.{mod}":
                raise


def solve(H: Hamiltonian, T: Any = 1.0, method: str = "mc", **kwargs: Any) -> Result:
    """Solve the thermodynamics of ``H`` over the temperature grid ``T`` (k_B = 1).

    Parameters
    ----------
    H : the Hamiltonian.
    T : a temperature or a 1-D array of them (> 0). Ignored by ``method="ground"``.
    method : ``"exact"``, ``"analytic"``, ``"mc"`` or ``"ground"``.
    **kwargs : method options (``backend``, ``seed``, ``sweeps``, ``algorithm``, ``direction``,
        ...), see each method's docstring.

    Returns
    -------
    Result : arrays over T with their standard errors (see :mod:`spinsim.result`).

    Raises
    ------
    ValueError for a bad method or temperature; :class:`spinsim.validation.EnergyRangeError` (a
    ValueError) when energies or |E|/T would overflow float64 (valid range in
    :func:`spinsim.validation.check_energy_range`).
    """
    if not isinstance(H, Hamiltonian):
        raise TypeError(f"solve() needs a spinsim.Hamiltonian, got {type(H).__name__}")
    if method not in METHODS:      # (importing one method module directly must not hide the others)
        _load_methods()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; allowed: {', '.join(repr(m) for m in sorted(METHODS))}")
    if method != "ground":
        T = check_temperatures(T)
        check_energy_range(H, T)          # |E| and |E|/T finite in float64, or EnergyRangeError
    else:
        check_energy_range(H)
    return METHODS[method](H, T, **kwargs)
