"""The download stage: archives onto the disk (`download`), the raw 300VW layouts from any source (`fetch`).

This file imports nothing.
"""
__all__ = ["download", "fetch"]
