"""The schema's error answers: each operation lists the error statuses it can really answer with.

A drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]): after the schema is
built it looks at every operation and at its view (authentication, permissions, throttles, pagination) and
adds the error responses that follow from them, so a new endpoint is covered without declaring anything.
What a view already declares (e.g. a 409 with its own body) is kept as it is.

The rules, and where each status comes from (recsys_site/exceptions.py shapes the bodies):

* 400: a request body or query parameters (validation errors, malformed JSON).
* 401: the view authenticates: no credentials, or an invalid, revoked or expired token.
* 403: the view authenticates and checks permissions beyond "anyone". Views also refuse inside their code
  (another user's interactions, staff-only inputs) where no generator can see, so every such operation lists it.
* 404: path parameters (malformed or unknown ids), a paginated list (a page past the end), the request body of
  an authenticated operation (ids and versions it names that match nothing; log-in and sign-up name none).
* 409: unsafe methods: a write that meets a database integrity error is a 409 (besides views' own 409s).
* 413, 415: a request body (over the size limit; a content type no parser reads).
* 414: every operation: gunicorn refuses request lines over 4094 bytes with its own HTML page.
* 429: the view's throttles apply: its own throttles (log-in, sign-up, recommendations) on any method, the
  default ones (writes) on unsafe methods only, as DEFAULT_THROTTLE_CLASSES count only writes.
* 503: every operation: the database is unreachable.
"""
from drf_spectacular.settings import spectacular_settings
from rest_framework.permissions import SAFE_METHODS, AllowAny
from rest_framework.settings import api_settings

ERROR_SCHEMA_NAME = "ErrorDetail"
VALIDATION_SCHEMA_NAME = "ValidationErrors"

ERROR_SCHEMA = {
    "type": "object",
    "description": "An error: what was wrong, in words.",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
VALIDATION_SCHEMA = {
    "type": "object",
    "description": 'Either {"detail": "..."} (a malformed request) or a map from each refused field (or '
                   '"non_field_errors") to its messages; nested fields nest the same way.',
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "array"}, {"type": "object"}]},
    "minProperties": 1,
}

DESCRIPTIONS = {
    400: "The request body or query parameters are invalid; the body says which and why.",
    401: "No credentials, or an invalid, revoked or expired token.",
    403: "Authenticated, but not allowed to do this.",
    404: "Nothing matches the path's id, the page or an id the request names.",
    409: "The request conflicts with the current state or with existing data.",
    413: "The request body is larger than the server accepts.",
    414: "The request line (path and query) is too long; gunicorn's own HTML page.",
    415: "The request body's content type is not one the operation reads.",
    429: "Too many requests; Retry-After says how many seconds to wait.",
    503: "A service the operation needs (the database) is unavailable.",
}


def document_error_responses(result, generator, request, public):
    """POSTPROCESSING_HOOKS entry: add every operation's error responses (see the module's docstring)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(ERROR_SCHEMA_NAME, ERROR_SCHEMA)
    schemas.setdefault(VALIDATION_SCHEMA_NAME, VALIDATION_SCHEMA)
    for path, method, view in _operation_views(generator, request):
        operation = result["paths"].get(path, {}).get(method.lower())
        if operation is None:  # left out of the schema (e.g. @extend_schema(exclude=True))
            continue
        responses = operation.setdefault("responses", {})
        for code in sorted(error_statuses(operation, method, view)):
            responses.setdefault(str(code), _error_response(code))
    return result


def _operation_views(generator, request):
    """(path as in the schema, method, view instance) for every endpoint the generator saw."""
    for path, _regex, method, callback in generator.endpoints:
        view = generator.create_view(callback, method)
        path = generator.coerce_path(path, method, view)
        view.request = spectacular_settings.GET_MOCK_REQUEST(method, path, view, request)
        yield path, method, view


def error_statuses(operation: dict, method: str, view) -> set[int]:
    """The error statuses one operation can answer with."""
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    has_query = any(parameter["in"] == "query" for parameter in parameters)
    has_path_ids = any(parameter["in"] == "path" for parameter in parameters)
    unsafe = method.upper() not in SAFE_METHODS

    codes = {414, 503}
    if has_body or has_query:
        codes.add(400)
    if has_body:
        codes |= {413, 415}
    if has_path_ids or _paginates(view, parameters):
        codes.add(404)
    if unsafe:
        codes.add(409)
    if view.get_authenticators():
        codes.add(401)
        if has_body:
            codes.add(404)
        if not all(isinstance(permission, AllowAny) for permission in view.get_permissions()):
            codes.add(403)
    if _throttled(view, unsafe):
        codes.add(429)
    return codes


def _paginates(view, parameters: list[dict]) -> bool:
    paginator = getattr(view, "paginator", None)
    page_parameter = getattr(paginator, "page_query_param", None)
    return page_parameter is not None and any(parameter["name"] == page_parameter for parameter in parameters)


def _throttled(view, unsafe: bool) -> bool:
    if not view.get_throttles():
        return False
    own_throttles = list(view.throttle_classes) != list(api_settings.DEFAULT_THROTTLE_CLASSES)
    return unsafe or own_throttles


def _error_response(code: int) -> dict:
    if code == 414:
        return {"description": DESCRIPTIONS[code], "content": {"text/html": {"schema": {"type": "string"}}}}
    name = VALIDATION_SCHEMA_NAME if code == 400 else ERROR_SCHEMA_NAME
    response = {"description": DESCRIPTIONS[code],
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}
    if code == 429:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                               "description": "Seconds to wait before trying again."}}
    return response
