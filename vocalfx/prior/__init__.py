"""Priors over the 130-value raw parameter vector.

:class:`GaussianPrior` is DiffVox's preset prior: a multivariate normal fitted to a collection of
presets, used to score, sample and regularise parameter vectors. ``GaussianPrior.default()`` is
the prior fitted from DiffVox's internal collection, shipped inside the package (provenance in
the repository's ``priors/README.md``).
"""

from .gaussian import (
    FILE_FORMAT,
    FILE_FORMAT_VERSION,
    SHRINKAGE_METHODS,
    GaussianPrior,
    PriorError,
    PriorNotFoundError,
    ledoit_wolf,
)

__all__ = [
    "GaussianPrior",
    "PriorError",
    "PriorNotFoundError",
    "ledoit_wolf",
    "SHRINKAGE_METHODS",
    "FILE_FORMAT",
    "FILE_FORMAT_VERSION",
]
