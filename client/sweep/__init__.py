"""`kinetoscope sweep SPEC.toml`: maximize models × layers × units × settings headless, resumably.

A sweep can run for hours, so each finished batch is written atomically and recorded
in OUT/manifest.json: running the same command again skips what is done, and a spec
whose iterations, seed or settings differ is refused instead of being mixed into the
same folder. The spec format is documented by example in docs/sweep-example.toml.

spec.py reads the spec, plan.py checks it against the models and cuts it into batches,
run.py submits them as one stored job and saves each as it finishes (manifest.py keeps
the record), galleries.py merges each layer's batches and renders them.
"""

from .errors import SpecError, SweepConflict, SweepError, SweepInterrupted
from .files import write_atomic
from .galleries import merge_batches
from .manifest import MANIFEST, MANIFEST_VERSION, PROGRESS
from .plan import Batch, Plan, folder_name, plan_sweep
from .run import SweepSummary, follow_job, run_sweep, sweep_request, write_job_results
from .spec import JOB_KEYS, MODEL_KEYS, SETTING_KEYS, SPEC_KEYS, JobEntry, ModelEntry, SweepSpec, load_spec, parse_spec

__all__ = [
    "JOB_KEYS", "MANIFEST", "MANIFEST_VERSION", "MODEL_KEYS", "PROGRESS", "SETTING_KEYS", "SPEC_KEYS",
    "Batch", "JobEntry", "ModelEntry", "Plan", "SpecError", "SweepConflict", "SweepError", "SweepInterrupted",
    "SweepSpec", "SweepSummary", "folder_name", "follow_job", "load_spec", "merge_batches", "parse_spec",
    "plan_sweep", "run_sweep", "sweep_request", "write_atomic", "write_job_results",
]
