"""Train several configs one after the other in one process group (torchrun starts Python once):

    torchrun --nproc_per_node=2 tests/scripts/train_many.py OUT '{"name": ["key=value", ...], ...}'
"""

import json
import sys
from pathlib import Path

from equilibria.training.config import load_config
from equilibria.training.run import train

out, runs = Path(sys.argv[1]), json.loads(sys.argv[2])
for name, overrides in runs.items():
    train(load_config(None, overrides), out / name)
