"""Evaluation of exported representations with disentanglement_lib's own metric functions."""

# The core package loads dlib's compat layer, which every metric module here needs before dlib is imported.
import submission  # noqa: F401
