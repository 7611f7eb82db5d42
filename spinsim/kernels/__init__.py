"""The Numba kernels (CPU loops, CUDA kernels, enumeration, quench) and their shared physics.

On import, compiled kernels cached from other versions of these sources are dropped
(:mod:`.cache_guard`: Numba itself checks only the file that defines each cached function).
"""
from .cache_guard import drop_stale_cache

drop_stale_cache()
