"""Exceptions raised by tflm_train.

Every failure of the C++ trainer arrives as a subclass of `TrainerError`
carrying the trainer's status name and message; the trainer and its weights are
unchanged by a failed call.
"""


class TrainerError(RuntimeError):
    """A call into the C++ trainer failed."""

    status = "Unknown"

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status


class InvalidArgumentError(TrainerError, ValueError):
    status = "InvalidArgument"


class InvalidDtypeError(InvalidArgumentError, TypeError):
    """Data that is not made of real numbers (strings, objects, complex values)."""


class InvalidModelError(TrainerError, ValueError):
    """The bytes are not a valid .tflite flatbuffer (truncated, corrupt)."""

    status = "InvalidModel"


class MissingPlanError(InvalidModelError):
    """A valid .tflite without a tflm_train training plan: convert it first."""

    status = "MissingPlan"


class UnsupportedPlanVersionError(InvalidModelError):
    status = "UnsupportedPlanVersion"


class InvalidPlanError(InvalidModelError):
    """The training plan does not fit the model it rides in."""

    status = "InvalidPlan"


class UnsupportedModelError(TrainerError, ValueError):
    status = "UnsupportedModel"


class ArenaTooSmallError(TrainerError, ValueError):
    """The arena cannot hold the trainer; `required_bytes` says what would."""

    status = "ArenaTooSmall"

    def __init__(self, message, status=None, required_bytes=0):
        super().__init__(message, status)
        self.required_bytes = required_bytes


class BadInputError(TrainerError, ValueError):
    status = "BadInput"


class BadLabelError(TrainerError, ValueError):
    status = "BadLabel"


class NonFiniteError(TrainerError, FloatingPointError):
    """The step would have written NaN/Inf; it was refused and weights are unchanged."""

    status = "NonFinite"


class NotInitializedError(TrainerError):
    status = "NotInitialized"


class ConversionError(ValueError):
    """A Keras model, loss or option that tflm_train.convert cannot turn into a trainable model."""


_BY_STATUS = {
    cls.status: cls
    for cls in (InvalidArgumentError, InvalidModelError, MissingPlanError, UnsupportedPlanVersionError,
                InvalidPlanError, UnsupportedModelError, ArenaTooSmallError, BadInputError, BadLabelError,
                NonFiniteError, NotInitializedError)
}


def raise_for_status(status, message, required_bytes=0):
    """Raises the exception for a failing C++ status (called by the binding)."""
    cls = _BY_STATUS.get(status, TrainerError)
    if cls is ArenaTooSmallError:
        raise ArenaTooSmallError(message, status, required_bytes)
    raise cls(message, status)
