"""Train several configs one after the other in one process group (torchrun starts Python once):

    torchrun --nproc_per_node=2 tests/scripts/train_many.py OUT '{"name": ["key=value", ...], ...}'

The process group is ended before Python exits, as ``equilibria``'s command line does: gloo's threads torn
down at interpreter exit can abort a process ("terminate called without an active exception"), which
failed this test in CI once.
"""

import json
import sys
from pathlib import Path

import torch.distributed as dist

from equilibria.training.config import load_config
from equilibria.training.run import train

out, runs = Path(sys.argv[1]), json.loads(sys.argv[2])
for name, overrides in runs.items():
    train(load_config(None, overrides), out / name)
dist.barrier()
dist.destroy_process_group()
