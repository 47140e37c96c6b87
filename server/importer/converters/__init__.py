"""Converters kinetoscope adds to onnx2torch; importing this package registers them all."""

from . import registry  # noqa: F401
from . import pooling  # noqa: F401
