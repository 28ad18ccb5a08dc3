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


class AccessRefused(Forbidden):
    """The caller reaches the object but its role does not allow the action. `kind` names the
    object, so a front end that answers these like a missing object (Immich) can say what it was."""

    def __init__(self, detail: str, *, kind: str | None = None):
        super().__init__(detail)
        self.kind = kind


class NotFound(DomainError):
    """`kind` and `ids` name what is missing, for front ends that show ids in their message."""

    status = 404

    def __init__(self, detail: str, *, kind: str | None = None, ids: tuple = ()):
        super().__init__(detail)
        self.kind = kind
        self.ids = ids


class Conflict(DomainError):
    """A deterministic conflict: retrying the same request cannot succeed."""

    status = 409


class Invalid(DomainError):
    """A value the domain cannot accept. `field` is its path in the command or filter
    (("rating",), ("asset_ids", 3)); each front end says where that field came from."""

    status = 422

    def __init__(self, detail: str, field: str | tuple[str | int, ...] = ()):
        super().__init__(detail)
        self.field = (field,) if isinstance(field, str) else tuple(field)


class InsufficientStorage(DomainError):
    status = 507
