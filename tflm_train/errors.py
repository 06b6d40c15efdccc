"""Exceptions raised by tflm_train.

Every failure of the C++ trainer arrives as a subclass of `TrainerError` (made by
the compiled trainer itself, one per status, with the status name in `.status`);
the trainer and its weights are unchanged by a failed call. Each is also the Python
exception a caller would expect: ValueError for bad arguments, models and data,
FloatingPointError for a step that would overflow, OSError for checkpoint storage
that fails.
"""

from ._core import (ArenaTooSmallError, BadInputError, BadLabelError, InvalidArgumentError, InvalidModelError,
                    InvalidPlanError, MissingPlanError, NonFiniteError, NotInitializedError, StorageError,
                    TrainerError, UnsupportedModelError, UnsupportedPlanVersionError)


class InvalidDtypeError(InvalidArgumentError, TypeError):
    """Data that is not made of real numbers (strings, objects, complex values)."""


class ConversionError(ValueError):
    """A Keras model, loss or option that tflm_train.convert cannot turn into a trainable model."""


__all__ = ["TrainerError", "InvalidArgumentError", "InvalidDtypeError", "InvalidModelError", "MissingPlanError",
           "UnsupportedPlanVersionError", "InvalidPlanError", "UnsupportedModelError", "ArenaTooSmallError",
           "BadInputError", "BadLabelError", "NonFiniteError", "NotInitializedError", "StorageError",
           "ConversionError"]
