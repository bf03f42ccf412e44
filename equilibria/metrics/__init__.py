"""Evaluation: Frechet distances, feature extractors, sample-quality scores, mode coverage and
discriminator diagnostics."""
