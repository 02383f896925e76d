"""The project's metrics, and the table of every metric it runs.

* ``table.py``: every fact about each metric (config, gin name, headline keys and labels, images encoded, quick
  preset, scheduling), dlib's and the project's; TensorFlow-free.
* ``dci_es.py``, ``infomec.py``, ``mig_sup.py``, ``dcimig.py``: metrics from recent papers, gin-configurable with
  dlib's signature; ``configs/`` holds their metric configs.
* ``dci_parallel.py``: dlib's DCI with its per-factor fits at once, dlib's numbers unchanged.

Importing this package imports nothing heavy; ``evaluation.evaluate`` imports the metric modules
(``table.register_all``).
"""
