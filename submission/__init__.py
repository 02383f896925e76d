"""TF2 disentanglement toolkit: trains dlib-compatible models and exports their representations."""
