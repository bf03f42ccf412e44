"""Analyses that probe trained runs (ICR's checkpoint experiment, Figure 4), outside the training core."""
