"""Mechanisms that make a kernel body callable from JAX.

The pure-JAX implementations are the reference and run on every platform;
native backends register further implementations in the same kernel objects.
"""

from ._kernel import (KernelImplementation as KernelImplementation,
                      XLACustomKernel as XLACustomKernel, all_kernels as all_kernels)
