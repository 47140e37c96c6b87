"""`python -m kinetoscope.client.render DIR/result.npz [--out DIR]`."""

import sys

from .cli import main

sys.exit(main())
