"""Exceptions raised by clusterlens.

Every error caused by what a user passed in derives from :class:`ClusterlensError`, so that
the command line can print it as one clear line (no traceback) and exit with status 2.
"""

__all__ = ["ClusterlensError", "ParameterError"]


class ClusterlensError(Exception):
    """Base class of the errors clusterlens raises for bad input or bad data."""


class ParameterError(ClusterlensError, ValueError):
    """A parameter has the wrong type, shape or value.

    The message names the parameter, its owner, what was expected and what was given, e.g.
    ``The 'q' parameter of SIE must be a float in the range (0, 1]. Got 1.3 instead.``
    """
