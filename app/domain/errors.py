"""Domain errors. Each HTTP layer maps them to its own status codes and bodies."""


class DomainError(Exception):
    status = 400

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class BadRequest(DomainError):
    status = 400


class Unauthorized(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    """A deterministic conflict: retrying the same request cannot succeed."""

    status = 409


class Invalid(DomainError):
    """Input that is well-formed HTTP but not acceptable (FastAPI-style 422)."""

    status = 422

    def __init__(self, detail: str, loc: tuple[str, ...] = ()):
        super().__init__(detail)
        self.loc = loc


class InsufficientStorage(DomainError):
    status = 507
