"""Every error under /api/ answers JSON ``{"detail": ...}``, whatever raised it and whatever DEBUG is.

DRF's views already answer JSON through recsys_site.exceptions; this covers the rest: paths that match no
route, Django's own refusals (a bad Host, CSRF, a body over the size limit), uncaught exceptions and the
technical 404/500 pages DEBUG shows, and views that render HTML (the Swagger UI's 405). Successful answers
pass untouched (the schema is YAML, the docs page HTML), and so does everything outside /api/.
"""
import logging
from http import HTTPStatus

from django.conf import settings
from django.http import JsonResponse

from .exceptions import DATABASE_DOWN_ERRORS, DATABASE_UNAVAILABLE, body_too_large_detail

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
# Headers an error answer needs to keep when its body is replaced (throttles, 401s, 405s, caching).
KEPT_HEADERS = ("Retry-After", "WWW-Authenticate", "Allow", "Vary")


class JSONErrorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not under_api(request.path):
            return self.get_response(request)
        # Decided from the header, before anything reads the body.
        if _declared_length(request) > _body_limit():
            return JsonResponse({"detail": body_too_large_detail()}, status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        response = self.get_response(request)
        if response.status_code < 400 or _is_json(response):
            return response
        return _as_json(request, response)

    def process_exception(self, request, exception):
        """An exception that escapes a view: a lost database connection is a 503, not a 500."""
        if not under_api(request.path):
            return None
        if isinstance(exception, DATABASE_DOWN_ERRORS):
            logger.error("database unavailable during %s %s: %s", request.method, request.path, exception,
                         exc_info=exception)
            return JsonResponse({"detail": DATABASE_UNAVAILABLE}, status=HTTPStatus.SERVICE_UNAVAILABLE)
        # Anything else goes on to Django, which logs it with its traceback ("django.request") and renders
        # its page: __call__ then replaces the page with JSON.
        return None


def under_api(path: str) -> bool:
    """``/api`` itself and every path below it, whether a route matches it or not."""
    return path.startswith(API_PREFIX) or path == API_PREFIX.rstrip("/")


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _body_limit() -> float:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return float("inf") if limit is None else limit


def _is_json(response) -> bool:
    media_type = response.get("Content-Type", "").split(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _as_json(request, response) -> JsonResponse:
    # A DRF answer rendered as HTML or YAML (the docs views) still carries its data: keep what it says.
    data = getattr(response, "data", None)
    if isinstance(data, dict) and "detail" in data:
        body = {"detail": data["detail"]}  # without what an HTML renderer adds for its template
    elif isinstance(data, dict) and data:
        body = data
    else:
        body = {"detail": _detail(request, response.status_code)}
    answer = JsonResponse(body, status=response.status_code)
    for header in KEPT_HEADERS:
        if header in response:
            answer[header] = response[header]
    return answer


def _detail(request, status_code: int) -> str:
    if status_code == HTTPStatus.NOT_FOUND:
        return f"No endpoint at {request.path}. See /api/docs/ for the API."
    if status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        return f"Method {request.method} is not allowed on {request.path}."
    if status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
        return body_too_large_detail()
    if status_code >= 500:
        return "Internal server error; it has been logged."
    try:
        return f"{HTTPStatus(status_code).phrase}."
    except ValueError:
        return f"Error {status_code}."
