"""Native TensorFlow side of the dream engine: the reference backend and the command line.

The algorithm itself is the `dreamengine` package, shared with the page; this package only
supplies TensorFlow tensor operations and file input/output.
"""

from scripts import REPO

__all__ = ["REPO"]
