"""Import an ONNX video ConvNet: load, check, fold BatchNorm, convert to torch, verify, catalog."""

from .catalog import Layer
from .errors import (
    ImportFailed,
    InvalidModel,
    ModelTooLarge,
    ParityError,
    UnsafeExternalData,
    UnsupportedModel,
)
from .inputs import InputSpec, parse_input_spec
from .limits import ImportLimits
from .pipeline import ImportedModel, ImportOptions, import_model
from .verify import Parity

__all__ = [
    "ImportFailed", "ImportLimits", "ImportOptions", "ImportedModel", "InputSpec", "InvalidModel", "Layer",
    "ModelTooLarge", "Parity", "ParityError", "UnsafeExternalData", "UnsupportedModel", "import_model",
    "parse_input_spec",
]
