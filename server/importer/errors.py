"""Errors an import can end with; each says which stage refused the model and why."""

from __future__ import annotations


class ImportFailed(Exception):
    """Base of every import error. `stage` names the pipeline step that refused."""

    stage: str = "import"

    def __init__(self, message: str, *, stage: str | None = None) -> None:
        super().__init__(message)
        if stage is not None:
            self.stage = stage

    def __str__(self) -> str:
        return f"{self.stage}: {self.args[0]}"


class InvalidModel(ImportFailed):
    """The bytes are not a valid ONNX model, or the caller's declarations contradict it."""


class ModelTooLarge(ImportFailed):
    """A size limit would be exceeded (file, tensor, or a shape the graph asks for)."""


class UnsafeExternalData(InvalidModel):
    """External data names a path outside the files uploaded with the model."""


class UnsupportedModel(ImportFailed):
    """The graph uses ops (or op versions / attributes) the converter cannot express."""


class ParityError(ImportFailed):
    """The converted torch graph does not compute what onnxruntime computes."""
