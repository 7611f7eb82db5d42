"""Data shipped with spinsim (import name ``spinsim.data``): ``prompts/paper20.tsv``."""
