"""Host side of the CUDA backend: device state between calls and the launches."""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator

import numpy as np
from numba import cuda

from .. import cpu
from ..arrays import Chains, Coupling, Graph, Sites, Walkers, chains, from_prepared, rank, walkers
from ..hidden import from_prepared as hidden_from_prepared
from ..state import load_arrays
from .kernels import _k_exchange, _k_resync, _k_sweeps_coop, _k_sweeps_serial
from .plan import MAX_THREADS, SIMULATOR, plan


def available() -> bool:
    """True when a CUDA GPU is visible to Numba (or the simulator is enabled)."""
    try:
        return bool(cuda.is_available())
    except Exception:   # pragma: no cover - broken driver installs
        return False


@contextlib.contextmanager
def _sim_speed() -> Iterator[None]:
    """Under the simulator, hand the GIL between the block's Python threads and the simulator's
    polling main thread every 0.5 ms instead of 5 ms (each syncthreads waits for a hand-over:
    3-6x faster); restored afterwards. No effect on a GPU."""
    if not SIMULATOR:
        yield
        return
    old = sys.getswitchinterval()
    sys.setswitchinterval(5e-4)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def _to_device(t):
    """A namedtuple with its arrays copied to the device (scalars kept)."""
    return type(t)(*(cuda.to_device(x) if isinstance(x, np.ndarray) else x for x in t))


class Runner:
    """The CUDA twin of :class:`spinsim.kernels.cpu.Runner` (same constructor, ``run``,
    ``reset_counters`` and ``results``). State stays on the device between ``run`` calls.

    Extra keywords: ``h_rep`` (R, N, n) per-replica fields (see cpu.Runner), and the launch plan
    ``threads_per_block``, ``cooperative``, ``shared_factors``, ``shared_work`` (see
    :func:`.plan.plan`). Raises ValueError for Wolff (CPU-only) and RuntimeError without a GPU."""

    def __init__(self, S, X, beta, seed, replica_ids, k, *, algorithm, alg_code, n_overrelax,
                 exchange, n_T, delta, resync, n_meas, h_rep=None, threads_per_block=None,
                 cooperative=None, shared_factors=None, shared_work=None):
        if algorithm == "wolff":
            raise ValueError("algorithm 'wolff' is CPU-only; use backend='cpu'")
        if not available():
            raise RuntimeError("backend 'cuda' needs a CUDA GPU (numba.cuda.is_available() is False); "
                               "use backend='cpu' or 'auto'")
        R, N, n = S.shape
        self.algorithm = algorithm
        self.alg_code = int(alg_code)
        self.n_overrelax = int(n_overrelax)
        self.exchange = bool(exchange)
        self.n_T = int(n_T)
        self.resync = int(resync)
        self.seed = np.uint64(seed)
        g, cp, st = from_prepared(k)
        code = int(cp.code)
        self.plan = plan(n, code, rank(cp), threads_per_block, cooperative, shared_factors,
                         shared_work, n_factor_sets=cp.A.shape[0])
        h_all = cpu.per_replica_fields(k["h"], h_rep, R, exchange, n_T)
        d = cuda.to_device
        self._g: Graph = _to_device(g)
        self._cp: Coupling = _to_device(cp)
        self._st: Sites = _to_device(st)
        self._h_all = d(h_all)
        z = lambda *shape, dt=np.float64: d(np.zeros(shape, dtype=dt))   # noqa: E731
        self._ch: Chains = _to_device(chains(S, X, cp))
        self._beta = d(np.ascontiguousarray(beta, np.float64))
        self._ids = d(np.ascontiguousarray(replica_ids, np.int64))
        self._delta = d(np.full(R, float(delta)))
        self._acc, self._tries = z(R, dt=np.int64), z(R, dt=np.int64)
        self._swap_acc, self._swap_tries = z(R, dt=np.int64), z(R, dt=np.int64)
        hid, n_msum = hidden_from_prepared(k, n)
        self._hid = _to_device(hid)
        self._mscr = z(R, n_msum + hid.C.shape[1])
        self._out = (z(R, n_meas), z(R, n_meas), z(R, n_meas), z(R, n_msum))   # E, |m|, m.u, sum m
        self._gwork = z(R, 1 if self.plan["sh_work"] else self.plan["work_len"])
        self._wlog = z(R, st.V.shape[0])
        self._wk: Walkers = _to_device(walkers(R))
        self.cluster = np.zeros(R)
        self.n_clusters = np.ones(R, dtype=np.int64)
        sh = 8 * self.plan["work_len"] if self.plan["sh_work"] else 0
        with _sim_speed():
            _k_resync[R, self.plan["threads"], 0, sh](self._ch, self._g, self._cp, self._st,
                                                      self._h_all, self._gwork, self.plan["sh_work"])

    # host copies of the live state (like cpu.Runner's attributes)
    @property
    def S(self) -> np.ndarray:
        return self._ch.S.copy_to_host()

    @property
    def X(self) -> np.ndarray:
        return self._ch.X.copy_to_host()

    @property
    def E(self) -> np.ndarray:
        return self._ch.E.copy_to_host()

    @property
    def delta(self) -> np.ndarray:
        return self._delta.copy_to_host()

    def _sweeps(self, sweep0: int, n_sweeps: int, t0: int, measure: bool, adapt: bool) -> None:
        p = self.plan
        R = self._ch.S.shape[0]
        kernel = _k_sweeps_coop if p["coop"] else _k_sweeps_serial
        kernel[R, p["threads"], 0, p["shared_bytes"]](
            self._ch, self._beta, self._delta, self._acc, self._tries, self.seed, self._ids, sweep0,
            n_sweeps, self.alg_code, self.n_overrelax, bool(adapt), self._g, self._cp, self._st,
            self._h_all, self.resync, self._out, t0, bool(measure), self._gwork, self._wlog,
            p["sh_work"], p["sh_fac"], self._hid, self._mscr)

    def run(self, sweep0: int, n_sweeps: int, measure_from: int, adapt: bool) -> None:
        """Sweeps sweep0 .. sweep0 + n_sweeps - 1; measured into columns measure_from + i when
        measure_from >= 0 (the semantics of cpu.run_local)."""
        with _sim_speed():
            self._run(sweep0, n_sweeps, measure_from, adapt)

    def _run(self, sweep0: int, n_sweeps: int, measure_from: int, adapt: bool) -> None:
        if not self.exchange:
            self._sweeps(sweep0, n_sweeps, measure_from, True, adapt)
            return
        R = self._ch.S.shape[0]
        n_chains = R // self.n_T
        nt = min(self.plan["threads"] if self.plan["coop"] else 32, MAX_THREADS)
        for i in range(n_sweeps):
            s = sweep0 + i
            self._sweeps(s, 1, -1, False, adapt)
            _k_exchange[n_chains, nt](
                self._ch, self._beta, self.seed, self._ids, s, self.n_T, self._swap_acc,
                self._swap_tries, self._out, measure_from + i if measure_from >= 0 else -1, self._st,
                self._hid, self._mscr, self._wk)

    def reset_counters(self, n_discard: int = 0) -> None:
        """Start acceptance statistics afresh (called when equilibration ends)."""
        for a in (self._acc, self._tries):
            a.copy_to_device(np.zeros(a.shape, dtype=np.int64))
        self.cluster[:] = 0
        self.reset_exchange_counters()

    def reset_exchange_counters(self) -> None:
        """cpu.Runner.reset_exchange_counters."""
        wk = self._wk
        for a in (self._swap_acc, self._swap_tries, wk.n_up, wk.n_down, wk.n_trips, wk.trip_sum):
            a.copy_to_device(np.zeros(a.shape, dtype=np.int64))

    def set_beta(self, beta: np.ndarray) -> None:
        """cpu.Runner.set_beta."""
        self._beta.copy_to_device(np.ascontiguousarray(beta, dtype=np.float64))

    def _live(self) -> dict[str, object]:
        """The device arrays of the state under cpu.state_arrays' names."""
        d = {f"chains/{k}": v for k, v in self._ch._asdict().items()}
        d.update({f"walkers/{k}": v for k, v in self._wk._asdict().items()})
        d.update(beta=self._beta, delta=self._delta, acc=self._acc, tries=self._tries,
                 swap_acc=self._swap_acc, swap_tries=self._swap_tries)
        d.update(zip(("out_E", "out_mabs", "out_mu", "out_msum"), self._out))
        return d

    def state(self) -> dict[str, np.ndarray]:
        """cpu.Runner.state (copied from the device)."""
        d = {k: v.copy_to_host() for k, v in self._live().items()}
        d.update(cluster=self.cluster.copy(), n_clusters=self.n_clusters.copy())
        return d

    def load_state(self, saved: dict[str, np.ndarray]) -> None:
        """cpu.Runner.load_state (copied to the device)."""
        live = self._live()
        host = {k: np.empty(v.shape, dtype=v.dtype) for k, v in live.items()}
        host.update(cluster=self.cluster, n_clusters=self.n_clusters)
        load_arrays(host, saved)
        for k, v in live.items():
            v.copy_to_device(np.ascontiguousarray(host[k]))

    def results(self) -> dict[str, np.ndarray]:
        """Copy the measured series and counters back (the keys of cpu.Runner.results)."""
        h = lambda a: a.copy_to_host()   # noqa: E731
        E, mabs, mu, msum = (h(a) for a in self._out)
        return dict(n_clusters=self.n_clusters, E=E, mabs=mabs, mu=mu, msum=msum,
                    acc=h(self._acc), tries=h(self._tries), swap_acc=h(self._swap_acc),
                    swap_tries=h(self._swap_tries), delta=h(self._delta), cluster=self.cluster,
                    S=h(self._ch.S), **{f"walkers_{k}": h(v) for k, v in self._wk._asdict().items()},
                    beta=h(self._beta))
