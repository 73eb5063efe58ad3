"""The one error Caffe64 raises for a file it cannot use: it names the file and line."""
from dragon import DragonError


class Caffe64Error(DragonError, ValueError):
    """A malformed or mismatched Caffe64 file (network, optim, data or weights).

    >>> raise Caffe64Error("net.txt line 3: unknown layer 'cnv'")
    """
