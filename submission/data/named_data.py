"""Data sets by ``dataset.name``, every family registered: import this module to look a data set up.

Each family module registers its names in the table of ``submission.data.registry`` when imported; this module
imports them all and gives the registry's API (``load``, ``entry``, ``names``, ``provenance``, ``make_missing``,
...). dlib computes its file paths when its modules are imported; here they are recomputed from
``$DISENTANGLEMENT_LIB_DATA`` each time a data set is loaded, so the variable can be set at any time, and a missing
file is reported by path before anything is read.

Which loader serves which name (dlib's names are all kept):

=====================================================  =========================================================
dsprites_full, dsprites_noshape, color_dsprites,        ``submission.data.dsprites``: dlib's ``DSprites`` classes,
noisy_dsprites, scream_dsprites                         unchanged (``ScreamDSprites`` with its Pillow crash fixed)
shapes3d                                                ``submission.data.shapes3d``
mpi3d_toy, mpi3d_realistic, mpi3d_real                  ``submission.data.mpi3d``
cars3d                                                  ``submission.data.cars3d``
smallnorb                                               ``submission.data.smallnorb``
correlated_ellipses                                     ``submission.data.correlated_ellipses`` (the project's own)
dummy_data                                              ``submission.data.dummy`` (dlib's ``DummyData``)
=====================================================  =========================================================

The project's loaders return dlib's observations for the same files, readable on today's stack and with the
pixels kept as compactly as the file allows (each module's docstring says what is wrong with dlib's there).
"""

# The families (each registers its names at import).
from submission.data import cars3d, correlated_ellipses, dsprites, dummy, mpi3d, shapes3d, smallnorb  # noqa: F401
from submission.data.registry import (  # noqa: F401  (the registry's API, with every data set registered)
    DATA_ENV, GENERATED, OFFICIAL, RENDERED, UNKNOWN, DatasetEntry, Generator, can_make_missing, check, data_root,
    dataset_name, entry, expected_paths, generate, generators, how_to_get, load, make_missing, missing_message,
    missing_paths, names, provenance, register, required_paths, unregister)
