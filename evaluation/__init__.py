"""Evaluation of exported representations with disentanglement_lib's own metric functions."""
