"""TF2 disentanglement toolkit: trains dlib-compatible models and exports their representations."""

# dlib 1.5's adaptations to today's TensorFlow, gin-config and NumPy load with the package, so that any import of
# ``submission`` makes dlib's metric modules importable. It imports neither TensorFlow nor dlib.
import submission.compat  # noqa: F401
