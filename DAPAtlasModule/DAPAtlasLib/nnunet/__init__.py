"""The parts of DAPAtlasLib that need torch and nnunetv2 (extra ``dap``) at import time.

Kept apart so that the rest of the library, its CLI help and the layout test import without
torch. Nothing is imported here eagerly.
"""
