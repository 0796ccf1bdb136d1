"""Event array types and the double-dispatch registry behind ``@``."""

from ._binary import (BinaryArray as BinaryArray, EventArray as EventArray,
                      concatenate as concatenate, stack as stack)
from ._dispatch import (kernels as kernels, matmul as matmul,
                        register_matmul as register_matmul)
from ._indexed import IndexedBinary1d as IndexedBinary1d, IndexedBinary2d as IndexedBinary2d
