"""The API's JSON parser: DRF's, minus the one kind of valid JSON that Python cannot store or send."""
import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    """Refuses strings holding lone UTF-16 surrogates (the escape ``"\\ud800"``).

    The JSON decoder accepts them, but no UTF-8 database column or response body can hold them, so
    they would surface as 500s far from the input (even an error message that echoes the value).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as error:
            raise ParseError("JSON parse error - strings must be valid Unicode; lone surrogate escapes "
                             "such as \\ud800 are not accepted.") from error
        return data
