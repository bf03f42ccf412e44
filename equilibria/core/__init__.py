"""The GAN-training core: the trainer and its extension points (components), objectives, penalties,
the EMA, the standard optimizers, config sections and the ``Method`` contract. It imports no method
and nothing of the job layer (``equilibria.training``)."""
