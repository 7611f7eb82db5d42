"""Analysis of head Hamiltonians against the models they come from (``spinsim.analysis``).

Logit-gap study: :mod:`.prompts` (prompt files), :mod:`.gaps` (dL_theory / dL_actual in the
paper's and the corrected modes), :mod:`.stats` (Pearson/Spearman, Bonferroni, BH, permutation
family-wise p), :mod:`.ablation` (zero/mean head ablation vs direct contribution), :mod:`.study`
(end to end, HDF5). Phase boundaries, figures and reports live in their own modules.
"""
from spinsim.models.attention import context_field

from .gaps import GapMode, actual_gaps, run_forward, theory_gaps
from .prompts import PromptFileError, PromptItem, TokenizedItem, load_prompts, tokenize_items
from .stats import benjamini_hochberg, bonferroni, head_stats, pearson, permutation_fwer, spearman

__all__ = ["GapMode", "actual_gaps", "context_field", "run_forward", "theory_gaps", "PromptFileError", "PromptItem",
           "TokenizedItem", "load_prompts", "tokenize_items", "benjamini_hochberg", "bonferroni", "head_stats",
           "pearson", "permutation_fwer", "spearman"]
