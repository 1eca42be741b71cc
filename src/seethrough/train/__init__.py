"""Training with a replayable data order: config, model shapes, the loop, runs.

Only ``loop`` and ``model`` import torch; ``order`` and ``run`` are numpy only, so a run's batches
can be replayed on a machine without torch.
"""

from .config import TrainConfig, load_config
from .order import Batch, DataOrder, OrderSpec, batch_sha256
from .loop import checkpoint_steps, is_checkpoint_step, learning_rate, train  # torch loads inside train(), not here
from .run import Run, RunError, open_run, read_log

__all__ = ["Batch", "DataOrder", "OrderSpec", "Run", "RunError", "TrainConfig", "batch_sha256", "checkpoint_steps",
           "is_checkpoint_step", "learning_rate", "load_config", "open_run", "read_log", "train"]
