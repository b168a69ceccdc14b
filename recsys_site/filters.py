"""DRF's search filter with the number of search words bounded.

Each word becomes one more LIKE condition over every search field, so a query string of a thousand words
builds a statement the database refuses (SQLite: "too large") or takes long to run. Ten words is more than
any name search needs.
"""
from rest_framework.exceptions import ValidationError
from rest_framework.filters import SearchFilter

MAX_SEARCH_WORDS = 10


class BoundedSearchFilter(SearchFilter):
    def get_search_terms(self, request):
        try:
            terms = super().get_search_terms(request)
        except ValidationError as error:  # DRF's own refusal (a null character) names no parameter
            raise ValidationError({self.search_param: error.detail}) from error
        if len(terms) > MAX_SEARCH_WORDS:
            raise ValidationError({self.search_param: f"At most {MAX_SEARCH_WORDS} search words; got {len(terms)}."})
        return terms
