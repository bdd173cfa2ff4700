"""The one place where jxspec_nb imports JAX, with float64 enabled.

Every module that computes with JAX imports ``jax`` and ``jnp`` from here, so
that double precision is switched on before the first array is created::

    from jxspec_nb._jax import jax, jnp

    x = jnp.asarray(1.0)
    assert x.dtype == jnp.float64
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import jax.scipy.special as jsp  # noqa: E402

__all__ = ["jax", "jnp", "jsp", "is_concrete"]


def is_concrete(*arrays: object) -> bool:
    """True when none of ``arrays`` is a JAX tracer (their values are known now).

    Example:
        >>> import numpy as np
        >>> is_concrete(np.zeros(3))
        True
    """
    return not any(isinstance(a, jax.core.Tracer) for a in arrays)
