"""The gRPC service layer: servicers, limits, auth, job queue, errors and wire format over the library and engine."""

from .analysis import AnalysisServicer
from .auth import BearerTokenInterceptor
from .errors import status_for
from .executor import Executor, LocalExecutor, TaskSpec
from .job_manager import JobManager
from .job_service import JobServicer, local_runner
from .jobs import Job, JobQueue, QueueFull
from .limits import ServiceLimits
from .models import ModelServicer
from .recording import RecordingServicer
from .reflection import enable_reflection
from .visualization import VisualizationServicer

__all__ = [
    "AnalysisServicer", "BearerTokenInterceptor", "Executor", "JobManager", "JobServicer", "LocalExecutor",
    "TaskSpec", "local_runner", "Job", "JobQueue", "ModelServicer", "QueueFull", "RecordingServicer", "ServiceLimits",
    "VisualizationServicer", "enable_reflection", "status_for",
]
