"""python -m icl: one command per process, as every workflow job runs it."""

import os
import sys

from .cli import main

main(own_process=True)
# The command's outputs are complete and closed. Ending the process here skips the interpreter's
# teardown (a last garbage collection over torch's objects, and every module's), about half a second
# of each job's CPU time; only the standard streams, redirected to the job's log, still need flushing.
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
