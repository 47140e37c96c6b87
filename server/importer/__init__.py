"""Import an ONNX video ConvNet: load, check, fold BatchNorm, convert to torch, verify, catalog.

Names are loaded on first use (`kinetoscope.lazy`): the pipeline imports torch, onnx and
onnx2torch; the error classes and input declarations do not, so a server can name them
without paying for the converter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kinetoscope.lazy import lazy_exports

_EXPORTS = {
    "ImportFailed": ".errors", "InvalidModel": ".errors", "ModelTooLarge": ".errors", "ParityError": ".errors",
    "UnsafeExternalData": ".errors", "UnsupportedModel": ".errors",
    "InputSpec": ".inputs", "parse_input_spec": ".inputs",
    "ImportLimits": ".limits",
    "Layer": ".catalog",
    "ImportOptions": ".options", "ImportedModel": ".pipeline", "import_model": ".pipeline",
    "Parity": ".verify",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from .catalog import Layer
    from .errors import ImportFailed, InvalidModel, ModelTooLarge, ParityError, UnsafeExternalData, UnsupportedModel
    from .inputs import InputSpec, parse_input_spec
    from .limits import ImportLimits
    from .options import ImportOptions
    from .pipeline import ImportedModel, import_model
    from .verify import Parity
