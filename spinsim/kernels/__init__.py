"""The Numba kernels (CPU loops, CUDA kernels, enumeration, quench) and their shared physics.

On import, before any kernel module creates its dispatchers, the kernels' disk-cache entries are
keyed on a digest of all these sources (:mod:`.cache_guard`: Numba alone checks only the file
that defines each cached function, while the loops inline physics from the other files).
"""
from .cache_guard import install as _install_cache_guard

_install_cache_guard()
