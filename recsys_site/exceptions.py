"""The one error boundary of the API.

Domain code raises :class:`DomainError` subclasses; this handler maps them and DRF's own
exceptions to one JSON shape: ``{"detail": "..."}`` or DRF's field-error map. Database
integrity errors that slip past validation become 400/409 instead of 500s, and a lost
database connection a 503.
"""
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "The database is unavailable; try again in a moment."
# The driver's errors for a connection that is gone or cannot be made (psycopg, sqlite3 "database is locked").
DATABASE_DOWN_ERRORS = (OperationalError, InterfaceError)


class DomainError(Exception):
    """A request the domain refuses; ``status_code`` says how."""

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT


class Forbidden(DomainError):
    status_code = status.HTTP_403_FORBIDDEN


class ServiceUnavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


def body_too_large_detail() -> str:
    return (f"The request body is larger than the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes "
            "(MAX_REQUEST_BODY_BYTES).")


def api_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response({"detail": exc.detail, **exc.extra}, status=exc.status_code)
    if isinstance(exc, DATABASE_DOWN_ERRORS):
        logger.error("database unavailable during %s: %s", context["view"].__class__.__name__, exc, exc_info=exc)
        return Response({"detail": DATABASE_UNAVAILABLE}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):  # a form body past Django's field or file count
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": " ".join(exc.messages)}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, IntegrityError):
        logger.warning("integrity error turned into 409: %s", exc)
        return Response({"detail": "The request conflicts with existing data."}, status=status.HTTP_409_CONFLICT)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or "You do not have permission to perform this action.")
    elif isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, list):
        # A bare list of messages (raised without a field, e.g. by a library's filter) keeps the one body shape.
        exc = exceptions.ValidationError({"detail": " ".join(map(str, exc.detail))})
    return exception_handler(exc, context)
