"""Numba kernels for exact enumeration (``method="exact"``): pure array functions, no objects.

Conventions (SPEC section 1): ``H = -sum_{i!=j} W_ij S_i^T M S_j - sum_i h_i.S_i``, k_B = 1.
Only the free sites are enumerated; frozen sites enter through the constant and the fields.

Ising (sigma_k = +-1, free sites k = 0..n-1, spin ``S_k = m_k sigma_k``)::

    E(sigma) = E_c - sum_{k<l} K_kl sigma_k sigma_l - sum_k b_k sigma_k
    K_kl = (W_kl + W_lk) M m_k m_l,   b_k = m_k phi0_k   (phi0: field of h and frozen sites)

The sites split into ``n_low`` low spins (0..n_low-1) and the high spins. The high spins run
through a Gray code: the configuration with Gray index g is ``gray(g) = g ^ (g >> 1)`` (bit set:
sigma = -1, the Ising vector index 1) and going from g-1 to g flips the single spin
``k = n_low + ctz(g)`` at ``dE = 2 sigma_k f_k`` with the local field
``f_k = b_k + sum_{l high} K_kl sigma_l``; the fields of the neighbours of k are then updated
(never the full energy). For every high configuration the 2^n_low low states c are summed in a
vectorised inner loop: ``E(c) = E_high + E_ll[c] - sum_l sigma_l(c) f_l`` with E_ll a table and
the linear term built by doubling (one add per state). States are reported as *state bits*
(bit k set: sigma_k = -1). The high Gray indices are cut into blocks of ``2^block_bits``; each
block starts from scratch (round-off never accumulates over more than one block) and blocks are
shared among ``n_chunks`` chunks that run in parallel, each with its own accumulators. Results do
not depend on the number of threads.

Integer variants take ``Ki = K/q``, ``bi = b/q`` (energies on a lattice of spacing q) and keep
E exactly in integers: ``E = E_c + q * E_int``.

Discrete (K states per site, vectors V (K, n_comp), free sites 0..n-1): sites 0..nb-1 are the
*leaf block*, summed in a vectorised inner loop over its K^nb states; the other sites run
through an odometer. ``psi[i, b]`` is the energy gain of site i in state b (``E = E_rest -
psi[i, b]``), from h, the frozen sites and the outer free sites (never the leaf block). A change
a -> a2 of outer site j updates, for every neighbour i, ``psi[i, b] += m_i m_j (W_ij (G[b,a2] -
G[b,a]) + W_ji (G[a2,b] - G[a,b]))`` with ``G = V M V^T`` (a table, or factors
``G[b, a] = X_b . Y_a`` when K is large).

The kernels live in :mod:`.enum_ising` (lattice energies), :mod:`.enum_ising_float` (real
energies), :mod:`.enum_discrete` and :mod:`.enum_common` (accumulators, level tracks, DOS bins);
this module is their one import point.
"""
from __future__ import annotations

from .enum_common import BIG, N_ACC
from .enum_discrete import discrete_pass
from .enum_ising import ising_joint_levels, ising_levels
from .enum_ising_float import ising_float_pass1, ising_float_pass2

__all__ = [
    "ising_joint_levels", "ising_levels", "ising_float_pass1", "ising_float_pass2",
    "discrete_pass", "N_ACC", "BIG",
]
