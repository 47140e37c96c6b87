"""Converters kinetoscope adds to onnx2torch; importing this package registers them all."""

from . import registry  # noqa: F401
from . import pooling  # noqa: F401
from . import versions  # noqa: F401
from . import reduce  # noqa: F401
from . import pad  # noqa: F401
from . import split  # noqa: F401
from . import resize  # noqa: F401
