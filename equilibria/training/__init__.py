"""The GAN-training core: config, trainer, components, checkpoints and the run loop
(``equilibria.training.run.train``)."""

from equilibria.training.components import Component, GeneratorStep
from equilibria.training.config import Config, ConfigError, load_config
from equilibria.training.trainer import Trainer

__all__ = ["Component", "Config", "ConfigError", "GeneratorStep", "Trainer", "load_config"]
