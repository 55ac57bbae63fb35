"""Exceptions raised by gbml_testbed: one class per variant of the crate's typed error
(``src/error.rs``), with the crate's message unchanged.

Every class derives from :class:`GbmlError` and from the closest builtin, so ``except
ValueError`` catches bad input the way it does for numpy.
"""


class GbmlError(Exception):
    """Base class of every error raised by the Rust core."""


class ShapeError(GbmlError, ValueError):
    """Two arrays whose shapes must agree do not (``Error::Shape``)."""


class NonFiniteError(GbmlError, ValueError):
    """A NaN or infinity where a finite number is required (``Error::NonFinite``)."""


class InvalidParameterError(GbmlError, ValueError):
    """A parameter outside its domain, or an array of the wrong dtype or memory layout
    (``Error::InvalidParameter``)."""


class EmptyInputError(GbmlError, ValueError):
    """An empty task, task set or input (``Error::Empty``)."""


class ParseError(GbmlError, ValueError):
    """Malformed architecture, conventions or tolerance table (``Error::Parse``)."""


class SingularKernelError(GbmlError, ArithmeticError):
    """A kernel matrix that must be positive definite is not (``Error::Singular``)."""


class DivergedError(GbmlError, ArithmeticError):
    """Training diverged (``Error::Diverged``)."""


class LinAlgError(GbmlError, ArithmeticError):
    """A factorization failed (``Error::LinAlg``)."""


class GbmlIOError(GbmlError, OSError):
    """A file could not be read or written (``Error::Io``)."""


class UnsupportedError(GbmlError, NotImplementedError):
    """A combination of options this version does not implement (``Error::Unsupported``)."""


__all__ = [
    "GbmlError",
    "ShapeError",
    "NonFiniteError",
    "InvalidParameterError",
    "EmptyInputError",
    "ParseError",
    "SingularKernelError",
    "DivergedError",
    "LinAlgError",
    "GbmlIOError",
    "UnsupportedError",
]
