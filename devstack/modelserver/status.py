"""TF Serving's error model: a canonical code plus a message, mapped to gRPC and HTTP the way it does."""

from __future__ import annotations

import enum


class Code(enum.IntEnum):
    """tensorflow.error.Code; the names are what TF Serving puts in metrics labels and status JSON."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# tensorflow_serving/model_servers/http_server.cc ToHTTPStatusCode.
_HTTP_STATUS = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


def http_status(code: Code) -> int:
    return _HTTP_STATUS.get(code, 500)


class ServingError(Exception):
    """A request or load failure carrying the code TF Serving would have returned."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ServingError({self.code.name}, {self.message!r})"


def invalid_argument(message: str) -> ServingError:
    return ServingError(Code.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(Code.NOT_FOUND, message)


def from_exception(error: BaseException) -> ServingError:
    """Map anything a TensorFlow call raised to a status, keeping TensorFlow's own code when it has one."""
    if isinstance(error, ServingError):
        return error
    code = getattr(error, "error_code", None)  # tf.errors.OpError carries the canonical code
    message = getattr(error, "message", None) or str(error) or error.__class__.__name__
    if isinstance(code, int) and code in Code.__members__.values():
        return ServingError(Code(code), str(message))
    if isinstance(error, (TypeError, ValueError)):
        return ServingError(Code.INVALID_ARGUMENT, str(message))
    return ServingError(Code.UNKNOWN, str(message))
