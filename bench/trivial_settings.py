"""The service's settings plus one URL, for bench/api_latency.py's baseline: the same gunicorn, middleware and
DRF stack serving a trivial endpoint (bench/trivial_urls.py). Never used outside the bench."""
from recsys_site.settings import *  # noqa: F403 (the service's settings, every one)

ROOT_URLCONF = "bench.trivial_urls"
