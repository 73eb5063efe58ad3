"""Errors the engine raises, each naming the user's op, tensor and shapes."""


class DragonError(Exception):
    """Base class of the engine's own errors."""


class ShapeError(DragonError, ValueError):
    """Shapes that do not fit an op (raised at compile time or when an op runs)."""


class UnknownOpError(DragonError, KeyError):
    """An op type that no module registered."""

    def __str__(self):  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class MissingTensorError(DragonError, KeyError):
    """A tensor an op reads that is neither fed, produced, nor in the workspace."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class FeedError(DragonError, TypeError):
    """A fed value of the wrong dtype or shape."""


class NoGradientError(DragonError, TypeError):
    """An op on the path from cost to a wrt tensor that has no gradient rule."""


class DisconnectedInputError(DragonError, ValueError):
    """A wrt tensor that the cost does not depend on."""
