"""Issue 13 item 4: parallel tempering checked against exact enumeration. Every replica's energy
histogram at its own temperature is compared with the exact Boltzmann distribution of spinsim's
enumeration (chi-square goodness of fit, scipy) on a small Ising ring and a small discrete head
system (causal graph, low-rank coupling, token vectors). A biased exchange rule fails the same
check (slow test: the rule is replaced in an unjitted run).

Samples are thinned by 3 tau_int (the largest over replicas) so that they are nearly independent,
as the chi-square test assumes."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import spinsim as ss

P_MIN = 1e-3        # each replica's p-value (fixed seed); a biased exchange gives p < 1e-6


def ring() -> ss.Hamiltonian:
    return ss.lattice("ising", 10)


def head() -> ss.Hamiltonian:
    """A small discrete head system with lattice energies (integer vectors and factors): 3 token
    vectors in R^3 on a causal graph of 5 sites, M = A B^T of rank 2, fields on two sites."""
    from spinsim.lattices import causal
    V = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, -1.0], [1.0, 1.0, 0.0]])
    A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    B = np.array([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    h = np.zeros((5, 3))
    h[0] = [1.0, 0.0, 0.0]
    h[4] = [0.0, -1.0, 1.0]
    return ss.Hamiltonian(W=causal(5), M=ss.LowRank(A, B), h=h, spin=ss.Discrete(V))


SYSTEMS = {"ising_ring": (ring, [0.5, 0.8, 1.2, 1.8, 2.8]),
           "discrete_head": (head, [0.7, 1.2, 2.0, 3.2, 5.0])}


def pt_energies(H: ss.Hamiltonian, T: list[float], algorithm: str, sweeps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Energies (n_T, sweeps) of each replica slot (temperature T[t], sorted) after every
    measured sweep of a tempering run (heat bath or Metropolis, exchange after every sweep), and
    the final swap acceptances."""
    from spinsim.kernels import cpu
    from spinsim.solvers.mc import _ALG_CODE, initial_state, prepare
    from spinsim.solvers.mc_run import run_schedule

    T = np.sort(np.asarray(T, dtype=np.float64))
    k = prepare(H)
    S, X = initial_state(H, T.size, "random", seed)
    runner = cpu.Runner(S, X, 1.0 / T, seed, np.arange(T.size), k, algorithm=algorithm,
                        alg_code=_ALG_CODE[algorithm], n_overrelax=1, exchange=True, n_T=T.size,
                        delta=0.5, resync=64, n_meas=sweeps)
    run_schedule(runner, discard=500, sweeps=sweeps, stages=[], ladder="fixed", n_T=T.size, n_chains=1,
                 adapt=False)
    out = runner.results()
    return out["E"], out["swap_acc"][:-1] / np.maximum(out["swap_tries"][:-1], 1)


def chi2_pvalue(E: np.ndarray, levels: np.ndarray, counts: np.ndarray, T: float) -> float:
    """Chi-square p-value of the sampled energies E against the exact level distribution
    P(E_l) = g_l exp(-E_l / T) / Z; levels with expected counts < 5 are pooled with neighbours."""
    logw = np.log(counts) - levels / T
    p = np.exp(logw - logw.max())
    p /= p.sum()
    idx = np.abs(E[:, None] - levels[None, :]).argmin(axis=1)
    assert np.allclose(levels[idx], E, atol=1e-9 * max(1.0, np.abs(levels).max())), "an energy off the exact levels"
    obs = np.bincount(idx, minlength=levels.size).astype(float)
    expect = p * E.size
    o_m, e_m, o, e = [], [], 0.0, 0.0
    for a, b in zip(obs, expect):
        o, e = o + a, e + b
        if e >= 5.0:
            o_m.append(o)
            e_m.append(e)
            o, e = 0.0, 0.0
    o_m[-1] += o
    e_m[-1] += e
    if len(o_m) < 2:
        return 1.0                     # one pooled bin: nothing to test at this temperature
    return float(stats.chisquare(o_m, e_m).pvalue)


def exact_levels(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The exact energy levels and their degeneracies of a system (spinsim's enumeration)."""
    make, T = SYSTEMS[name]
    ex = ss.solve(make(), T, method="exact")
    assert "level" in str(ex.meta["dos"]), ex.meta["dos"]          # exact levels, not a histogram
    return np.asarray(ex.dos_energy), np.asarray(ex.dos_count)


def marginal_pvalues(name: str, algorithm: str, sweeps: int = 20000, seed: int = 11,
                     exact: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[list[float], list[float]]:
    """p-values of every replica's energy histogram at its temperature, and the swap acceptances."""
    from spinsim.observables import tau_int

    make, T = SYSTEMS[name]
    H = make()
    levels, counts = exact if exact is not None else exact_levels(name)
    E, acc = pt_energies(H, T, algorithm, sweeps, seed)
    thin = max(1, math.ceil(3 * max(tau_int(e) for e in E)))
    return [chi2_pvalue(E[t, ::thin], levels, counts, float(Tt)) for t, Tt in enumerate(np.sort(T))], acc.tolist()


@pytest.mark.parametrize("name,algorithm", [("ising_ring", "pt"), ("ising_ring", "metropolis"),
                                            ("discrete_head", "pt")])
def test_every_replica_samples_the_exact_boltzmann_distribution(name, algorithm):
    p, acc = marginal_pvalues(name, algorithm)
    print(f"{name}/{algorithm}: p = {np.round(p, 4).tolist()}, swap acceptance = {np.round(acc, 3).tolist()}")
    assert min(acc) > 0.05, acc                # the replicas do exchange
    assert min(p) > P_MIN, p


# ----------------------------------------------------------------------------- a biased exchange fails
#: wrong exchange rules, as the exponent x of min(1, exp(x)) (right: x = (b1 - b2)(E1 - E2))
#: the system the wrong rules run on (unjitted: each system costs ~13 s)
BIASED_SYSTEMS = ("discrete_head",)
BIASED = {
    "sign": lambda b1, b2, E1, E2: -(b1 - b2) * (E1 - E2),      # the Boltzmann ratio inverted
    "half": lambda b1, b2, E1, E2: 0.5 * (b1 - b2) * (E1 - E2),  # half the exponent
    "always": lambda b1, b2, E1, E2: 0.0,                        # every swap accepted
}


def _biased_runs(levels_file: str) -> None:
    """(subprocess, NUMBA_DISABLE_JIT=1) for each wrong rule: replace the exchange rule and print
    the worst p-value of the heat-bath tempering run on both systems (the exact levels come from
    the parent: the enumeration kernels need Numba)."""
    from spinsim.kernels import cpu
    from spinsim.kernels.rng import exchange_slot, n_slots, uniform, visit_seed

    lv = np.load(levels_file)
    for rule, exponent in BIASED.items():
        def accept(key1, s, n_sites, b1, b2, E1, E2, exponent=exponent):
            vs = visit_seed(key1, s, exchange_slot(n_sites), n_slots(n_sites))
            x = exponent(b1, b2, E1, E2)
            return x >= 0.0 or uniform(vs, 0) < math.exp(x)
        cpu.exchange_accept = accept
        worst = min(min(marginal_pvalues(n, "pt", sweeps=2000, exact=(lv[f"{n}_E"], lv[f"{n}_g"]))[0])
                    for n in BIASED_SYSTEMS)
        print(f"RULE {rule} {worst:.3e}", flush=True)


@pytest.mark.slow
def test_a_biased_exchange_rule_fails_the_marginal_check(tmp_path):
    """The same check with a wrong acceptance rule in the exchange step (an unjitted run, ~13 s,
    with the rule replaced): for every wrong rule some replica's p-value falls below 1e-6. On the
    discrete head system (measured at this seed, 1 Dec: 'sign' and 'always' 0, 'half' 2.5e-20;
    the Ising ring, no longer run here to halve the time, gave 0, 0 and 2.9e-12)."""
    levels = {}
    for n in BIASED_SYSTEMS:
        levels[f"{n}_E"], levels[f"{n}_g"] = exact_levels(n)
    np.savez(tmp_path / "levels.npz", **levels)
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    r = subprocess.run([sys.executable, __file__, str(tmp_path / "levels.npz")], env=env,
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    worst = {line.split()[1]: float(line.split()[2]) for line in r.stdout.splitlines() if line.startswith("RULE")}
    assert worst.keys() == BIASED.keys(), r.stdout
    assert all(p < 1e-6 for p in worst.values()), worst


if __name__ == "__main__":
    _biased_runs(sys.argv[1])
