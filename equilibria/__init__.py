"""equilibria: train GANs that reach a better equilibrium."""

__version__ = "0.1.0"
