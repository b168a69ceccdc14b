"""The API's JSON parser: DRF's, minus the valid JSON that the service cannot handle safely.

Refused with a 400 that says why, instead of surfacing as a 500 far from the input:

- nesting deeper than ``MAX_DEPTH`` (Python's decoder, and everything that walks the data after it,
  recurses: a 2 KB body of brackets raised RecursionError);
- numbers that are not finite: ``NaN``, ``Infinity``, and literals too large for a float (``1e309``), which
  no column stores and no response can send back as JSON, and integers too long to become a float;
- strings holding lone UTF-16 surrogates (the escape ``"\\ud800"``): no UTF-8 column or response body can
  hold them.
"""
import json
import math
from collections.abc import Iterable

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding  # type: ignore[attr-defined]  # in DRF, not its stubs

# No request of this API nests more than a few levels (a training request: object, list, event object).
MAX_DEPTH = 32
# The digits of the largest finite float (1.8e308): no field of this API takes a longer integer.
MAX_INTEGER_DIGITS = 308


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        text = _decode(stream.read(), get_encoding(parser_context or {}))
        try:
            data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                              parse_int=_bounded_int)
        except RecursionError as error:
            raise ParseError(_too_deep()) from error
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from error
        _check_depth_and_strings(data)
        return data


def _decode(body: bytes, encoding: str) -> str:
    try:
        return body.decode(encoding)
    except (LookupError, UnicodeDecodeError) as error:
        raise ParseError(f"JSON parse error - the body is not valid {encoding} text.") from error


def _refuse_constant(name: str):
    raise ParseError(f"JSON parse error - {name} is not a number this API accepts; send finite numbers only.")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ParseError(f"JSON parse error - {literal} is too large for a number; send finite numbers only.")
    return value


def _bounded_int(literal: str) -> int:
    # Longer integers overflow a float wherever a number field converts them (OverflowError, not ValueError).
    digits = len(literal.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise ParseError(f"JSON parse error - an integer of {digits} digits is larger than any number this API "
                         "accepts.")
    return int(literal)


def _too_deep() -> str:
    return f"JSON parse error - the body nests arrays and objects deeper than {MAX_DEPTH} levels."


def _check_depth_and_strings(data) -> None:
    """One walk with an explicit stack (so it cannot recurse out) over every value and key."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            _check_unicode(value)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise ParseError(_too_deep())
        if isinstance(value, dict):
            for key in value:
                _check_unicode(key)
            children: Iterable = value.values()
        else:
            children = value
        stack.extend((child, depth + 1) for child in children)


def _check_unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ParseError("JSON parse error - strings must be valid Unicode; lone surrogate escapes such as "
                         "\\ud800 are not accepted.") from error
