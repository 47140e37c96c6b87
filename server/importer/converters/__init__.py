"""Converters kinetoscope adds to onnx2torch; importing this package registers them all."""

from . import registry  # noqa: F401
from . import conv  # noqa: F401
from . import pooling  # noqa: F401
from . import reduce  # noqa: F401
from . import resize  # noqa: F401
from . import activations  # noqa: F401
from . import layout_ops  # noqa: F401
from . import normalization  # noqa: F401
from . import misc  # noqa: F401  (after reduce, whose versions it aliases)
from . import versions  # noqa: F401  (after the converters it aliases)
from . import pad  # noqa: F401
from . import split  # noqa: F401
