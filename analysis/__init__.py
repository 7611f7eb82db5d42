"""Analysis of head Hamiltonians against the models they come from (``spinsim.analysis``).

Logit-gap study: :mod:`.prompts` (prompt files), :mod:`.gaps` (logit gaps dL_theory / dL_actual
in the paper's and the corrected modes), :mod:`.stats` (Pearson/Spearman, Bonferroni, BH,
permutation family-wise p), :mod:`.ablation` (zero/mean head ablation vs direct contribution;
the hooks and partial replays in :mod:`.ablation_forward`), :mod:`.study` (end to end, HDF5).
:mod:`.validate`: candidate gaps of a probe, analytic vs exact vs Monte Carlo.
:mod:`.ground_study`: ground states, level gaps and spin-wave gaps of every head.
:mod:`.boundaries`: phase boundaries of sweeps. :mod:`.figures` (a package, by figure family)
and :mod:`.report`. :mod:`.demo`: the whole study as one function (``spinsim demo``).
A head's attention (and its context field) is :mod:`spinsim.models.attention`.
"""
from spinsim.models.attention import context_field

from .gaps import GapMode, actual_gaps, run_forward, theory_gaps
from .prompts import PromptFileError, PromptItem, TokenizedItem, load_prompts, tokenize_items
from .stats import benjamini_hochberg, bonferroni, head_stats, pearson, permutation_fwer, spearman

__all__ = ["GapMode", "actual_gaps", "context_field", "run_forward", "theory_gaps", "PromptFileError", "PromptItem",
           "TokenizedItem", "load_prompts", "tokenize_items", "benjamini_hochberg", "bonferroni", "head_stats",
           "pearson", "permutation_fwer", "spearman"]
