"""Block-split adapter: a deployed block (kept at deployment) and a quarantine block (deleted).

See docs/adapter.md for the math, the zones table, the inits and the export format.
"""

from vgrout.adapter.attach import MERGE_SCALES, BlockAdapter, attach, find_targets, load_adapter
from vgrout.adapter.calibration import contrastive_input_deltas, pair_token_ids
from vgrout.adapter.config import ABSORB, INITS, KEEP, PAIR_INITS, ROUTE, AdapterConfig
from vgrout.adapter.probes import BottleneckCapture, GradProbe

__all__ = [
    "ABSORB", "INITS", "KEEP", "MERGE_SCALES", "PAIR_INITS", "ROUTE",
    "AdapterConfig", "BlockAdapter", "BottleneckCapture", "GradProbe",
    "attach", "contrastive_input_deltas", "find_targets", "load_adapter", "pair_token_ids",
]
