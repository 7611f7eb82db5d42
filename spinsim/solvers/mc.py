"""Monte Carlo: ``solve(H, T, method="mc", backend="cpu"|"cuda"|"auto", algorithm=..., ...)``.

Algorithms (all sample exp(-H/T), k_B = 1):

* ``"metropolis"``: single-site Metropolis; continuous spins propose ``normalize(sigma + delta
  eps)`` with isotropic eps (symmetric), delta tuned per temperature to ~50 % acceptance during
  the discarded equilibration sweeps only (then frozen); discrete spins propose another state
  uniformly.
* ``"heatbath"`` (default): exact conditional draw of a site given its local field (von
  Mises-Fisher for O(n) spins in any n, categorical for discrete/Ising).
* ``"overrelax"``: ``n_overrelax`` microcanonical reflection sweeps (sigma -> 2(sigma.mu)mu -
  sigma, dE = 0) followed by one heat-bath sweep, counted as one sweep.
* ``"pt"``: heat bath plus parallel tempering (replica exchange between neighbouring
  temperatures after every sweep). ``exchange=True`` adds exchange to any local algorithm.
* ``"wolff"``: Wolff cluster updates, for isotropic ferromagnets without field or frozen sites,
  each sweep of clusters preceded by one heat-bath sweep (ergodicity guard: with single-site
  clusters, at zero coupling or high T, a fixed number of flips per sweep never visits half of
  the states).

Several independent chains run by default (``n_chains=DEFAULT_CHAINS`` = 4, each ``sweeps`` long)
and ``Result.rhat`` reports their rank-normalised split R-hat (Vehtari et al. 2021); ``meta
["warnings"]`` flags R-hat > 1.01, runs shorter than 50 tau_int or 100 sweeps per chain, blocks
shorter than 4 tau_int and drifts (rules: :mod:`spinsim.observables`).

Every random number comes from a counter-based generator keyed by (seed, replica, sweep, site),
so a run is reproducible and the CUDA backend draws the same numbers.
"""
from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..bins import Bins, bin_series
from ..directions import projection_direction
from ..kernels.arrays import KIND_CONTINUOUS, KIND_DISCRETE
from ..kernels.moves import ALG_HEATBATH, ALG_METROPOLIS, ALG_OVERRELAX
from ..kernels.state import SERIES
from ..checkpoint import Checkpointer, describe_params, run_identity
from ..hamiltonian import Discrete, Hamiltonian, Identity, Ising
from ..ladder import check_ladder_option, tempering_report, tuning_stages
from ..observables import run_warnings, thermodynamics
from ..reduced_space import describe as describe_state_space
from ..reduced_space import state_space
from ..result import Result
from ..validation import check_choice, check_positive_int
from . import register
from .mc_run import run_schedule

__all__ = ["solve_mc", "ALGORITHMS", "BACKENDS", "DEFAULT_CHAINS", "prepare", "initial_state", "cuda_available"]

#: independent chains per temperature unless asked otherwise (split R-hat needs several)
DEFAULT_CHAINS = 4

ALGORITHMS = ("metropolis", "heatbath", "overrelax", "pt", "wolff")
BACKENDS = ("cpu", "cuda", "auto")
_ALG_CODE = {"metropolis": ALG_METROPOLIS, "heatbath": ALG_HEATBATH, "overrelax": ALG_OVERRELAX,
             "pt": ALG_HEATBATH}


def cuda_available() -> bool:
    """True when Numba sees a CUDA GPU (or the CUDA simulator is enabled)."""
    try:
        from numba import cuda
        return bool(cuda.is_available())
    except Exception:
        return False


def prepare(H: Hamiltonian, direction: Any = None) -> dict[str, Any]:
    """Flatten a Hamiltonian into the kernel arrays (shared by the CPU and CUDA backends).

    The coupling supplies its own arrays (:meth:`spinsim.coupling.Coupling.kernel_arrays`: ``A``,
    ``B`` (n, r) for LowRank, ``SA``, ``SB`` (N, n, r) for SiteLowRank). Every
    array is a writable C-contiguous copy: the Hamiltonian's own arrays are read-only, and Numba
    types a read-only array apart from a writable one (a second compilation on the CPU; on CUDA
    the cooperative kernel's shared-memory copies of A, B must unify with a writable type)."""
    def own(a: Any, dtype: Any = np.float64) -> np.ndarray:
        return np.array(a, dtype=dtype, order="C", copy=True)

    ptr, idx, w_out, w_in = H.neighbours()
    n = H.n_comp
    ka = H.M.kernel_arrays()
    discrete = isinstance(H.spin, (Ising, Discrete))
    V = own(H.spin.vectors) if discrete else np.zeros((1, n))
    U, u_label = _direction(H, direction)
    return dict(free=np.flatnonzero(~H.frozen).astype(np.int64), ptr=own(ptr, np.int64),
                idx=own(idx, np.int64), w_out=own(w_out), w_in=own(w_in), code=int(ka.code),
                J=float(ka.J), Mmat=own(ka.Mmat), A=own(ka.A), B=own(ka.B), SA=own(ka.SA),
                SB=own(ka.SB), h=own(H.h),
                lengths=own(H.lengths), U=own(U), kind=KIND_DISCRETE if discrete else KIND_CONTINUOUS,
                V=V, u_label=u_label)


def _direction(H: Hamiltonian, direction: Any) -> tuple[np.ndarray, str | None]:
    """Projection directions for ``Result.projection``: :func:`spinsim.directions.projection_direction`."""
    return projection_direction(H, direction)


def initial_state(H: Hamiltonian, n_replicas: int, init: Any, seed: int,
                  replica_offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Initial spins S (R, N, n) and discrete indices X (R, N), identical for every backend;
    random starts are keyed by (seed, replica_offset) so that sweep rows start differently."""
    N, n = H.n_sites, H.n_comp
    discrete = isinstance(H.spin, (Ising, Discrete))
    X = np.zeros((n_replicas, N), dtype=np.int64)
    if isinstance(init, str):
        check_choice("init", init, ("random", "ordered"))
        if init == "random":
            rng = np.random.default_rng([seed, 0x5EED, int(replica_offset)])
            if discrete:
                X = rng.integers(0, H.spin.vectors.shape[0], (n_replicas, N))
                sig = H.spin.vectors[X]
            else:
                g = rng.standard_normal((n_replicas, N, n))
                sig = g / np.linalg.norm(g, axis=2, keepdims=True)
        else:
            if discrete:
                sig = np.broadcast_to(H.spin.vectors[0], (n_replicas, N, n)).copy()
            else:
                sig = np.zeros((n_replicas, N, n))
                sig[..., 0] = 1.0
        S = sig * H.lengths[None, :, None]
    else:
        S = np.asarray(init, dtype=np.float64)
        if S.shape == (N, n):
            S = np.broadcast_to(S, (n_replicas, N, n)).copy()
        if S.shape != (n_replicas, N, n):
            raise ValueError(f"init array must have shape ({N}, {n}) or ({n_replicas}, {N}, {n}), got {S.shape}")
        for s in S:
            H.check_state(s, only_free=True)
        if discrete:
            sig = S / H.lengths[None, :, None]
            X = np.argmin(np.linalg.norm(sig[:, :, None, :] - H.spin.vectors[None, None], axis=-1), axis=-1)
    if H.frozen.any():
        S[:, H.frozen] = H.state[H.frozen]
    return np.ascontiguousarray(S, dtype=np.float64), np.ascontiguousarray(X, dtype=np.int64)


def _check_wolff(H: Hamiltonian, k: dict[str, Any]) -> None:
    if not isinstance(H.M, Identity) or H.M.J <= 0:
        raise ValueError("algorithm 'wolff' needs an isotropic ferromagnetic coupling (Identity with J > 0)")
    if np.any(k["w_out"] + k["w_in"] < 0):
        raise ValueError("algorithm 'wolff' needs non-negative graph weights W_ij >= 0")
    if np.any(H.h != 0):
        raise ValueError("algorithm 'wolff' needs zero field (use 'heatbath' or 'pt' with a field)")
    if H.frozen.any():
        raise ValueError("algorithm 'wolff' does not support frozen sites")
    if isinstance(H.spin, Discrete):
        raise ValueError("algorithm 'wolff' needs ising or heisenberg spins, not discrete")


@register("mc")
def solve_mc(H: Hamiltonian, T: np.ndarray, *, backend: str = "cpu", algorithm: str = "heatbath",
             sweeps: int = 2000, discard: int | None = None, seed: int = 0, n_chains: int = DEFAULT_CHAINS,
             exchange: bool | None = None, n_overrelax: int = 1, direction: Any = None,
             init: Any = "random", progress: bool | None = None, delta: float = 0.5,
             resync: int = 64, replica_offset: int = 0, reduce: bool | None = None,
             ladder: str = "fixed", checkpoint: str | os.PathLike | None = None,
             checkpoint_interval: float = 60.0) -> Result:
    """Monte Carlo estimates over the temperature grid T.

    Parameters
    ----------
    backend : ``"cpu"`` (Numba, replicas in parallel), ``"cuda"`` or ``"auto"``.
    algorithm : one of ``ALGORITHMS`` (see module docstring).
    sweeps : measured sweeps per chain (a sweep visits every free site once).
    discard : equilibration sweeps, thrown away (default ``sweeps // 4``, at least 100);
        reported in ``Result.n_discard``.
    seed : non-negative integer; with the replica index, sweep and site it keys every draw.
    n_chains : independent chains per temperature (replica ids ``chain * n_T + t``), default
        ``DEFAULT_CHAINS`` = 4; their split R-hat is ``Result.rhat``.
    exchange : replica exchange between neighbouring temperatures (default: only for ``"pt"``).
    n_overrelax : reflection sweeps per heat-bath sweep for ``"overrelax"``.
    direction : projection direction for ``Result.projection``: ``"field"`` (default when a field
        is present), ``"top_eigenvector"``, an (n_comp,) or (n_sites, n_comp) array.
    init : ``"random"`` (default), ``"ordered"`` or an array of spins.
    progress : show a progress bar (default: when on a terminal).
    resync : recompute E and m from scratch every ``resync`` sweeps (round-off control).
    reduce : the state space. ``None`` (default): the exact reduced spin space
        (:mod:`spinsim.reduced_space`: per site the coordinates in span(A, B) and along its own
        field and projection direction, the other components integrated exactly) wherever it
        applies (heisenberg spins, n_comp >= 5, LowRank/SiteLowRank coupling) and is smaller than
        n_comp; ``True``: required (NotReducibleError where it does not apply); ``False``: the
        full space (the reference). Results are in the full n-dimensional meaning either way;
        ``Result.meta['state_space']`` says which was used.
    ladder : replica exchange only: ``"fixed"`` (default) keeps T; ``"acceptance"`` (equal swap
        acceptance) or ``"feedback"`` (Katzgraber et al. 2006) tune the inner temperatures during
        the first half of the discarded sweeps, keeping the end points (:mod:`spinsim.ladder`);
        ``Result.T`` is then the tuned ladder (in the rank order of the given T). Every exchange
        run reports ``meta["ladder"]`` (sorted), ``"swap_acceptance"`` (neighbouring pairs),
        ``"fraction_up"``, ``"round_trip_time"`` (sweeps) and ``"n_round_trips"``.
    checkpoint : a file path: the chain state is saved there (atomically; the measured series
        appended to ``<path>.series``) about every ``checkpoint_interval`` seconds (0: every ~1 %
        of the run), not after the last sweep, and a rerun with the same arguments resumes from
        the last save, bit-identical to an uninterrupted run (:mod:`spinsim.checkpoint`;
        CheckpointMismatchError naming the parameter when it holds another run's). The files are
        left in place: delete them (``spinsim.checkpoint.remove_checkpoint``) once the result is
        stored.
    """
    check_choice("backend", backend, BACKENDS)
    check_choice("algorithm", algorithm, ALGORITHMS)
    sweeps = check_positive_int("sweeps", sweeps, 2)
    n_chains = check_positive_int("n_chains", n_chains)
    n_overrelax = check_positive_int("n_overrelax", n_overrelax)
    resync = check_positive_int("resync", resync)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    if discard is None:
        discard = max(100, sweeps // 4)
    discard = check_positive_int("discard", discard, 0)
    if not (np.isfinite(delta) and delta > 0):
        raise ValueError(f"delta (initial Metropolis step) must be > 0, got {delta!r}")
    discrete = isinstance(H.spin, (Ising, Discrete))
    if algorithm == "overrelax" and discrete:
        raise ValueError(f"algorithm 'overrelax' needs continuous (heisenberg) spins, not {H.spin.name}")
    if exchange is None:
        exchange = algorithm == "pt"
    if exchange and algorithm == "wolff":
        raise ValueError("replica exchange is not combined with 'wolff'; use algorithm='pt'")
    check_ladder_option(ladder, bool(exchange), np.asarray(T).size)
    if backend == "auto":
        backend = "cuda" if cuda_available() else "cpu"
    k = prepare(H, direction)
    if algorithm == "wolff":
        _check_wolff(H, k)
    k, space = state_space(H, k, reduce)
    order = np.argsort(T) if exchange else np.arange(T.size)   # exchange needs a sorted ladder
    Ts = T[order]
    if ladder != "fixed" and np.any(np.diff(Ts) <= 0):
        raise ValueError(f"ladder={ladder!r} needs distinct temperatures; T has repeated values")
    n_T = Ts.size
    R = n_T * n_chains
    beta = np.tile(1.0 / Ts, n_chains)
    replica_ids = np.arange(R, dtype=np.int64) + int(replica_offset)
    S, X = initial_state(H, R, init, int(seed), int(replica_offset))
    if space is not None:
        S = space.visible(S)

    if backend == "cuda":
        from ..kernels import cuda as engine   # noqa: F401  (raises a clear error without a GPU)
    else:
        from ..kernels import cpu as engine
    runner = engine.Runner(S, X, beta, int(seed), replica_ids, k, algorithm=algorithm,
                           alg_code=_ALG_CODE.get(algorithm, 1), n_overrelax=n_overrelax,
                           exchange=bool(exchange), n_T=n_T, delta=delta, resync=resync,
                           n_meas=sweeps)
    stages = tuning_stages(discard) if ladder != "fixed" else []
    ckpt = None
    if checkpoint is not None:
        params = dict(
            hamiltonian=H.describe()["hamiltonian_sha256"], T=np.asarray(T, np.float64), backend=backend,
            algorithm=algorithm, sweeps=sweeps, discard=discard, seed=int(seed), n_chains=n_chains,
            exchange=bool(exchange), n_overrelax=n_overrelax, direction=k["U"], S0=S, X0=X, delta=delta,
            resync=resync, replica_offset=int(replica_offset), state_space=describe_state_space(space, H.n_comp),
            ladder=ladder)
        ckpt = Checkpointer(checkpoint, run_identity(**params), checkpoint_interval, describe_params(**params),
                            series=SERIES, discard=discard)
    t_start = time.perf_counter()
    with tqdm(total=discard + sweeps, desc=f"mc/{backend}/{algorithm}", unit="sweep",
              disable=_no_bar(progress), leave=False) as bar:
        run_schedule(runner, discard=discard, sweeps=sweeps, stages=stages, ladder=ladder, n_T=n_T,
                     n_chains=n_chains, adapt=algorithm == "metropolis", bar=bar, checkpoint=ckpt)
    elapsed = time.perf_counter() - t_start
    out = runner.results()
    if space is not None:
        out["msum"] = space.lift_mean(out["msum"])
    if ladder != "fixed":                          # the tuned ladder, end points as given
        Ts = np.concatenate([Ts[:1], 1.0 / out["beta"][1:n_T - 1], Ts[-1:]])
    res = _assemble(H, Ts, order, out, n_T, n_chains, sweeps, discard, algorithm, backend,
                    int(seed), bool(exchange), n_overrelax, k["u_label"], elapsed, R)
    res.meta["state_space"] = describe_state_space(space, H.n_comp)
    if exchange:
        report, warns = tempering_report(out, Ts, n_chains, sweeps)
        res.meta.update(report, ladder_tuning=ladder)
        if ladder != "fixed":
            res.meta.update(ladder_initial=np.sort(np.asarray(T, np.float64)).tolist(), ladder_stages=stages)
        res.meta["warnings"].extend(warns)
    return res


def _no_bar(progress: bool | None) -> bool | None:
    return None if progress is None else (not progress)


def _assemble(H: Hamiltonian, Ts: np.ndarray, order: np.ndarray, out: dict[str, np.ndarray],
              n_T: int, n_chains: int, sweeps: int, discard: int, algorithm: str, backend: str,
              seed: int, exchange: bool, n_overrelax: int, u_label: str | None, elapsed: float,
              R: int) -> Result:
    """Per-temperature statistics, returned in the caller's order of T."""
    N, n = H.n_free, H.n_comp
    fields: dict[str, list[float]] = {}       # schema name -> one estimate per temperature
    acc, mvecs, chain_mvecs, warnings, n_blocks, binned, rhat_p = [], [], [], [], [], [], []
    for t in range(n_T):
        rows = np.arange(n_chains) * n_T + t
        th = thermodynamics(out["E"][rows], out["mabs"][rows], out["mu"][rows], float(Ts[t]), N, n)
        binned.append(bin_series(out["E"][rows], out["mabs"][rows], out["mu"][rows]))
        for key, value in th.estimates.items():
            fields.setdefault(key, []).append(value)
        n_blocks.append(th.n_blocks)
        rhat_p.append(th.rhat_pvalue)
        warnings.extend(run_warnings(th, n_chains, float(Ts[t])))      # rules: spinsim.observables
        tries = out["tries"][rows].sum()
        acc.append(out["acc"][rows].sum() / tries if tries > 0 else 1.0)
        mvecs.append(out["msum"][rows].sum(axis=0) / (sweeps * n_chains))
        chain_mvecs.append(out["msum"][rows] / sweeps)
    inv = np.argsort(order)
    arr = {k: np.asarray(v)[inv] for k, v in fields.items()}
    bins = _stack_bins([binned[i] for i in inv])
    meta: dict[str, Any] = {
        "algorithm": algorithm, "exchange": exchange, "n_chains": n_chains,
        "rng": "counter-based SplitMix64 keyed by (seed, replica, sweep, site)",
        "elapsed_s": round(elapsed, 4),
        "updates_per_s": float(R * (sweeps + discard) * H.n_free / max(elapsed, 1e-12)),
        "n_blocks": list(np.asarray(n_blocks)[inv].tolist()),
        "rhat_pvalue": list(np.asarray(rhat_p, float)[inv].tolist()),   # spinsim.observables.Thermo
        "warnings": warnings,
    }
    if algorithm == "overrelax":
        meta["n_overrelax"] = n_overrelax
    if algorithm == "metropolis":
        meta["metropolis_step"] = out["delta"][:n_T][inv].tolist()
    if algorithm == "wolff":
        per_cluster = out["cluster"] / (sweeps * out["n_clusters"]) / max(H.n_free, 1)
        meta["mean_cluster_fraction"] = per_cluster.reshape(n_chains, n_T).mean(0)[inv].tolist()
        meta["clusters_per_sweep"] = out["n_clusters"].reshape(n_chains, n_T)[0][inv].tolist()
    if u_label is not None:
        meta["projection_direction"] = u_label
    else:                              # no direction: no projection observables
        arr = {k: v for k, v in arr.items() if not k.startswith("projection")}
    if algorithm == "metropolis":
        arr["acceptance"] = np.asarray(acc)[inv]
    res = Result(
        T=Ts[inv], method="mc", backend=backend, seed=seed, n_sites=H.n_sites, n_free=H.n_free,
        n_comp=n, magnetization_vector=np.asarray(mvecs)[inv], n_sweeps=sweeps, n_discard=discard,
        n_replicas=R, meta=meta, bins=bins, **arr)
    # each chain's own mean moment (n_T, n_chains, n_comp): Z2-related chains (m and -m) cancel in
    # magnetization_vector; callers that need the chains apart read this (in memory, not stored)
    res.chain_magnetization_vector = np.asarray(chain_mvecs)[inv]
    return res


def _stack_bins(per_T: list[tuple]) -> Bins:
    """One :class:`spinsim.bins.Bins` over T from :func:`spinsim.bins.bin_series` per temperature."""
    _, _, bin_len, _, stride, spb = per_T[0]
    return Bins({k: np.stack([p[0][k] for p in per_T]) for k in per_T[0][0]},
                np.array([p[1] for p in per_T]), bin_len,
                {k: np.stack([p[3][k] for p in per_T]) for k in per_T[0][3]}, stride, spb)
