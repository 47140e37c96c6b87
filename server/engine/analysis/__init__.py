"""Quantitative findings per unit, in the manner of the paper's sections 4.1, 4.2.1 and Fig. 9.

Each module measures one thing over real clips or optimized inputs: responses (the
recorder's per-clip maxima, for a whole batch at once), class selectivity with a
permutation test, reliance on each input stream, tuning to replay speed, how
optimized inputs change across training checkpoints, and how the optimized motion
changes across γ (numpy only, shared with the client: `kinetoscope.motion`).
docs/ANALYSIS.md defines them. Importing this package does not import torch.
"""

from kinetoscope.motion import MotionAcrossSettings, MotionError, flow_fields, motion_across_settings

__all__ = ["MotionAcrossSettings", "MotionError", "flow_fields", "motion_across_settings"]
