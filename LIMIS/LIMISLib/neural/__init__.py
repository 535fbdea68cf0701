"""The LIMIS networks that need torch (and transformers, segment-anything) at import time.

Kept apart so that the rest of LIMISLib (command language, sessions, baseline models) imports
without torch. Nothing is imported here eagerly; ``LIMISLib`` exports the classes lazily.
"""
