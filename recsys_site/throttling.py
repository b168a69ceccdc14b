"""DRF throttles for the API's scopes (settings REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]).

``login`` and ``register`` count per client address, ``write`` counts a user's unsafe-method requests and
``recommendations`` a user's recommendation queries. The counts live in the default cache: Redis when one
is configured, so every worker shares them. DRF's own classes are used with three changes:

* the rate is read from the settings when the throttle is made, not when DRF was imported, so that a
  changed setting (a test, a reload) takes effect;
* a cache that cannot be reached lets the request through with a warning: losing the throttle for a
  while is better than failing every request with a 500;
* the wait announced in ``Retry-After`` is the time until the next request would really be allowed,
  even when concurrent workers pushed a count past its limit (DRF's would then announce none).
"""
import logging
import time

from redis.exceptions import RedisError
from rest_framework import throttling
from rest_framework.permissions import SAFE_METHODS
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)

# A cache that is down fails every request; one warning a minute per process says so without flooding the log.
WARNING_INTERVAL_SECONDS = 60.0
_last_warning = {"at": float("-inf")}


def _warn_cache_unreachable(scope: str, error: Exception) -> None:
    now = time.monotonic()
    if now - _last_warning["at"] >= WARNING_INTERVAL_SECONDS:
        _last_warning["at"] = now
        logger.warning("throttle %r not applied: the cache is unreachable (%s: %s); requests are let through",
                       scope, type(error).__name__, error)


class FailOpenRateThrottle(throttling.SimpleRateThrottle):
    def get_rate(self):
        self.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
        return super().get_rate()

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError) as error:
            _warn_cache_unreachable(self.scope, error)
            return True

    def wait(self):
        # Allowed again once the oldest of the last num_requests requests leaves the window.
        if len(self.history) < self.num_requests:
            return None
        return max(0.0, self.duration - (self.now - self.history[self.num_requests - 1]))


class ClientAddressThrottle(FailOpenRateThrottle):
    """Counts per client address: REMOTE_ADDR, or X-Forwarded-For's last hop behind the trusted proxy."""

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginThrottle(ClientAddressThrottle):
    scope = "login"


class RegisterThrottle(ClientAddressThrottle):
    scope = "register"


class UserScopedThrottle(FailOpenRateThrottle, throttling.ScopedRateThrottle):
    """The view's ``throttle_scope``, counted per user (per address for anonymous requests)."""


class WriteThrottle(FailOpenRateThrottle, throttling.UserRateThrottle):
    """An authenticated user's POST, PUT, PATCH and DELETE requests; reads and anonymous requests are not counted."""

    scope = "write"

    def get_cache_key(self, request, view):
        if request.method in SAFE_METHODS or not (request.user and request.user.is_authenticated):
            return None
        return super().get_cache_key(request, view)
