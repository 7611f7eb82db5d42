"""spinsim: attention heads of transformers as classical spin systems.

Conventions: ``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i.S_i``, k_B = 1, heads ``L{l}H{h}``
counted from 0. See SPEC / README.
"""
from ._version import __version__
from ._numba_cache import ensure_cache_dir as _ensure_cache_dir

_ensure_cache_dir()     # before any kernel compiles: a read-only install and HOME get a temporary cache
from .hamiltonian import (Dense, Discrete, Hamiltonian, Heisenberg, Identity, Ising, LowRank,
                          replace)
from .site_coupling import SiteLowRank
from .lattices import (causal, chain, complete_graph, cubic, lattice, sherrington_kirkpatrick,
                       square, textbook)
from .result import Result
from .solvers import solve
from .phase import read_sweep, sweep
from . import reweighting
from .reweighting import Reweighting, reweight

__all__ = [
    "__version__", "Hamiltonian", "Ising", "Heisenberg", "Discrete", "Identity", "Dense", "LowRank", "SiteLowRank",
    "replace", "lattice", "chain", "square", "cubic", "complete_graph", "sherrington_kirkpatrick",
    "causal", "textbook", "Result", "solve", "sweep", "read_sweep",
    "reweight", "Reweighting", "reweighting",
]
