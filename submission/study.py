"""dlib's unsupervised_study_v1 postprocess config, as the pipeline uses it. Every fact about a metric (configs,
names, headline keys, sample sizes, the quick preset, scheduling) is in ``evaluation/metrics/table.py``."""

POSTPROCESS_CONFIG = "config/unsupervised_study_v1/postprocess_configs/mean.gin"
