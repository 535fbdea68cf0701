"""Load torch (and triton, which ``torch._dynamo`` imports) before VTK's OpenGL libraries.

trame-slicer's views load Mesa's OpenGL (with its LLVM); importing triton after that crashes the
process (segmentation fault). The server imports torch later for the LIMIS semantic command matcher
(any sentence the rules do not know), the LIMIS neural models and DAP inference, so
:mod:`anatomy_web.app` imports this module first. Without torch installed it does nothing.
"""

try:
    import torch
    import torch._dynamo  # noqa: F401
except ImportError:  # the web extra alone has no torch: nothing to order
    pass
