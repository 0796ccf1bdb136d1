"""Event-driven layers for model code: pytrees with a weight leaf and ``layer(x)``.

:class:`EventLinear` (dense weights), :class:`EventFixedProb` (connection with a
probability, stored as CSR or regenerated as JITC), :class:`FixedNumConn` and
:class:`EventFixedNumConn` (a fixed number of connections per neuron), with the
weight distributions :class:`Normal` and :class:`Uniform`. Every layer maps
``(..., n_pre)`` input to ``(..., n_post)`` output and works under ``jax.jit``,
``jax.grad``, ``jax.vmap`` and ``lax.scan``; see docs/nn.md.
"""

from ._base import Layer as Layer
from ._init import Normal as Normal, Uniform as Uniform
from ._layers import (EventFixedNumConn as EventFixedNumConn, EventFixedProb as EventFixedProb,
                      EventLinear as EventLinear, FixedNumConn as FixedNumConn)
