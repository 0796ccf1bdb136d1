"""brainevent: event-driven sparse matrices for JAX, mirroring scipy.sparse.

Wrap spikes in :class:`BinaryArray`, build connectivity as :class:`CSR`,
:class:`CSC` or :class:`COO` (from scipy, from a dense array or from
coordinates), and write ``spikes @ conn``: the result equals the dense product
and composes with ``jax.jit``, ``jax.grad``, ``jax.vmap`` and ``lax.scan``.
"""

__version__ = '0.1.0'

from . import _config as config, backends as backends
from .backends import XLACustomKernel as XLACustomKernel
from .backends._native import (CompilationError as CompilationError,
                               CompiledModule as CompiledModule, clear_cache as clear_cache,
                               get_cache_dir as get_cache_dir, load_cpp_file as load_cpp_file,
                               load_cpp_inline as load_cpp_inline,
                               load_cuda_file as load_cuda_file,
                               load_cuda_inline as load_cuda_inline,
                               set_cache_dir as set_cache_dir)
from .backends._numba_kernel import numba_kernel as numba_kernel
from .backends._pallas import pallas_kernel as pallas_kernel
from .backends._warp import warp_kernel as warp_kernel
from .events import (BinaryArray as BinaryArray, EventArray as EventArray,
                     IndexedBinary1d as IndexedBinary1d, IndexedBinary2d as IndexedBinary2d,
                     concatenate as concatenate, kernels as kernels, matmul as matmul,
                     stack as stack)
from .formats import (COO as COO, CSC as CSC, CSR as CSR, FixedPostNumConn as FixedPostNumConn,
                      FixedPreNumConn as FixedPreNumConn, JITCMatrix as JITCMatrix,
                      JITCNormalC as JITCNormalC, JITCNormalR as JITCNormalR,
                      JITCScalarC as JITCScalarC, JITCScalarR as JITCScalarR,
                      JITCUniformC as JITCUniformC, JITCUniformR as JITCUniformR,
                      SparseMatrix as SparseMatrix,
                      coo2csr as coo2csr, hstack as hstack, load_npz as load_npz,
                      random as random, save_npz as save_npz, vstack as vstack,
                      update_coo_on_binary_post as update_coo_on_binary_post,
                      update_coo_on_binary_pre as update_coo_on_binary_pre,
                      update_csc_on_binary_post as update_csc_on_binary_post,
                      update_csc_on_binary_pre as update_csc_on_binary_pre,
                      update_csr_on_binary_post as update_csr_on_binary_post,
                      update_csr_on_binary_pre as update_csr_on_binary_pre,
                      update_dense_on_binary_post as update_dense_on_binary_post,
                      update_dense_on_binary_pre as update_dense_on_binary_pre,
                      update_on_binary_post as update_on_binary_post,
                      update_on_binary_pre as update_on_binary_pre)
from . import nn as nn
