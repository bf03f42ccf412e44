"""The job layer: a run's config, building a trainer from it, the run loop, checkpoints and samples
(``equilibria.training.run.train``). It sits above the core (``equilibria.core``) and the methods
(``equilibria.methods``)."""

from equilibria.training.config import ConfigError, load_config

__all__ = ["ConfigError", "load_config"]
