"""Imported first in the import forkserver: its output goes to /dev/null, not to the caller's stdout and stderr.

The forkserver outlives the command that started it by the second its interpreter takes
to exit; holding the command's stdout or stderr open for that second made a pipe or a
`$(kinetoscope import …)` wait for it. Nothing the forkserver or an import child writes
there is needed: children report progress, results and errors over their own pipe.
"""

import os


def detach_output() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    finally:
        os.close(devnull)


detach_output()
