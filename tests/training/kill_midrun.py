"""Train the toy problem and SIGKILL this process inside update `kill_at` (for the resume test).

Usage: ``python -m tests.training.kill_midrun <checkpoint_dir> <kill_at>`` from the repository root.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from audio2photoreal_pipelines.training import train
from tests.training.toy import RESUME_CONFIG, loss_fn, make_model, sample_batch


def main() -> None:
    """Run until the forward pass of update `kill_at`, then die without any clean-up."""
    checkpoint_dir, kill_at = Path(sys.argv[1]), int(sys.argv[2])
    calls = 0

    def dying_loss_fn(model, batch, generator):
        nonlocal calls
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return loss_fn(model, batch, generator)

    train(make_model(), dying_loss_fn, sample_batch, RESUME_CONFIG, checkpoint_dir=checkpoint_dir)


if __name__ == "__main__":
    main()
