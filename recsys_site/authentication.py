"""Knox token authentication, reading the token and its user with one plain SQL query.

Every API request authenticates, and an ORM ``select_related`` lookup spends about 0.9 ms of Python
building the query and two model instances on the 2-core machine the latency aim is set for; the
same read in plain SQL (recsys_site.db) costs 0.2 ms. Knox stores a token as its ``token_key`` (the
first characters, indexed) and a digest of the whole; the row is found by the key and the digest
compared in constant time, as knox does. The user comes back with the few fields the API reads
loaded; any other field loads on first access, as with ``QuerySet.only``. ``request.auth`` is the
``AuthToken``, so that it can be revoked (deleted).

Unlike knox, an expired token is not deleted when it is presented: authenticating stays a single read,
the client is told its token expired (not merely that it is invalid) every time it tries, and the
user's expired tokens are dropped when they log in again (profiles.services.auth_token_issue).
"""
import re
from hmac import compare_digest

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox import auth
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from rest_framework import exceptions

from . import db

USER_FIELDS = {"id", "username", "is_active", "is_staff", "is_superuser"}
TOKEN_FIELDS = ["digest", "token_key", "user_id"]
INVALID = _("Invalid token: it was revoked or never existed. Log in again for a new one.")
EXPIRED = _("Token expired. Log in again for a new one.")


def _is_knox_shaped(key: str) -> bool:
    """What knox issues: the configured prefix and hex characters. Anything else is refused before any query
    (so a NUL character, which PostgreSQL cannot compare, never reaches the database)."""
    length = knox_settings.AUTH_TOKEN_CHARACTER_LENGTH
    return re.fullmatch(f"{re.escape(knox_settings.TOKEN_PREFIX)}[0-9a-f]{{{length}}}", key) is not None


class TokenAuthentication(auth.TokenAuthentication):
    """Knox's header parsing (``Authorization: Token <key>``) and messages, with a one-query lookup."""

    def authenticate_credentials(self, token: bytes):
        key = token.decode("latin-1")  # DRF hands the header over as latin-1 bytes
        if not _is_knox_shaped(key):
            raise exceptions.AuthenticationFailed(INVALID)
        digest = hash_token(key)
        for row in self._candidates(key):
            if compare_digest(digest, row[0]):
                return self._authenticated(row)
        raise exceptions.AuthenticationFailed(INVALID)

    def _candidates(self, key: str) -> list[tuple]:
        """(digest, token_key, user_id, expired, *user fields) of the tokens sharing ``key``'s lookup prefix."""
        user_model = get_user_model()
        columns = ", ".join([*(f"t.{field}" for field in TOKEN_FIELDS),
                             "CASE WHEN t.expiry IS NOT NULL AND t.expiry <= %s THEN 1 ELSE 0 END",
                             *(f"u.{field}" for field in self._user_fields())])
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        return db.rows(f"SELECT {columns} FROM {db.table(get_token_model())} t JOIN {db.table(user_model)} u "
                       "ON u.id = t.user_id WHERE t.token_key = %s",
                       [now, key[:CONSTANTS.TOKEN_KEY_LENGTH]])  # as knox stores and looks it up

    def _authenticated(self, row: tuple):
        count = len(TOKEN_FIELDS)
        token_values, expired, user_values = row[:count], row[count], row[count + 1:]
        if expired:
            raise exceptions.AuthenticationFailed(EXPIRED)
        user = get_user_model().from_db(DEFAULT_DB_ALIAS, self._user_fields(), user_values)
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        auth_token = get_token_model().from_db(DEFAULT_DB_ALIAS, TOKEN_FIELDS, token_values)
        auth_token.user = user
        return user, auth_token

    @staticmethod
    def _user_fields() -> list[str]:
        # from_db takes the values in the model's field order
        return [f.attname for f in get_user_model()._meta.concrete_fields if f.attname in USER_FIELDS]


class TokenScheme(KnoxTokenScheme):
    """The schema's security scheme for this class (drf-spectacular's knox extension matches knox's class only)."""

    target_class = "recsys_site.authentication.TokenAuthentication"  # drf-spectacular imports the path
    name = "tokenAuth"
