"""torch.compile settings of the training step, shared by every job.

Compiling changes float rounding, not what is computed, and a compiled run is as reproducible run
to run as an eager one. Its cost is a compile per graph (tens of seconds on a CPU), so compiled
graphs are kept in a persistent cache that later jobs and later runs read.
"""

import os
from pathlib import Path

import torch

# Where compiled graphs are kept unless TORCHINDUCTOR_CACHE_DIR says otherwise: outside the
# repository, so that every checkout and every job on the machine shares them.
CACHE = Path.home() / ".cache" / "icl" / "torchinductor"


def compiled(function, mode: str, device: torch.device):
    """`function` compiled with torch.compile in `mode` (default, reduce-overhead, max-autotune)."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(CACHE))
    if device.type == "cpu":
        import torch._inductor.config as inductor

        # The vectorised tanh of inductor's CPU code is several times slower than 2 / (1 + exp(-2x)) - 1,
        # and the released model's GELU is the tanh approximation (the switch exists from torch 2.8).
        if hasattr(inductor.cpp, "use_decompose_tanh"):
            inductor.cpp.use_decompose_tanh = True
    return torch.compile(function, mode=mode)
