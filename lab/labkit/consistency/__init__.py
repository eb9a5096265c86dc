"""The lab's cross-hardware checks: jit, vmap, pmap, shard_map and NamedSharding agree with eager
execution and with float64 NumPy, on whichever backend they run.

They are part of the product, not of the project's own tests: ``invoke lab`` runs them on its
backend (see :func:`labkit.steps.run_checks`), and the images ship them with the package.
They are pytest modules; :mod:`labkit.consistency.plugin` gives them ``--backend`` and starts
JAX on it.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
