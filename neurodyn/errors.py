"""Exceptions raised by neurodyn."""


class DivergenceError(FloatingPointError):
    """The integrated state became NaN or infinite.

    Raised instead of returning a trajectory that contains non-finite values.
    """


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type or dtype (a TypeError that is also a ValueError)."""
