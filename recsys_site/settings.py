"""One settings module, driven by the environment (see README "Configuration").

With no environment at all it runs on a laptop: SQLite under var/, Celery tasks
in-process, DEBUG off unless asked for.
"""
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .env import database_from_url, env_bool, env_float, env_int, env_list, env_str, model_storage

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for local development)")
    SECRET_KEY = "insecure-development-only-key-do-not-use-in-production-0123456789"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as static files (SPECTACULAR_SETTINGS), no CDN
    "django_celery_beat",
    "profiles",
    "ml",
    "recommendations",
]

MIDDLEWARE = [
    # Outermost, so that it sees every answer under /api/, and refuses an oversized body before anything reads it.
    "recsys_site.middleware.JSONErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "recsys_site.urls"
WSGI_APPLICATION = "recsys_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The landing page, and admin/base_site.html (a link to the staff pages) over Django's own.
        "DIRS": [BASE_DIR / "recsys_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    VAR_DIR.mkdir(exist_ok=True)
    DATABASE_URL = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": database_from_url(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic gathers the static files whitenoise serves (DEBUG off); the live tests use their own.
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Trained model artifacts: MODEL_DIR/<algorithm>/<version>/
MODEL_DIR = Path(env_str("MODEL_DIR", str(BASE_DIR / "models" / "saved")))
# Where every process finds the versions (ml.artifacts): "" keeps them in MODEL_DIR (one machine); "s3" in an
# S3-compatible bucket, MODEL_DIR then being where they are written and the local cache. Credentials and
# region come from the standard AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION).
MODEL_STORAGE = (env_str("MODEL_STORAGE", "") or "").strip().lower()
STORAGES["models"] = model_storage(MODEL_STORAGE, MODEL_DIR)
# Caps the Two-Tower's epochs (0 = the engine's default); small worlds (demo, tests) train in seconds.
TWO_TOWER_MAX_EPOCHS = env_int("TWO_TOWER_MAX_EPOCHS", 0)
# A running training whose worker wrote no heartbeat for this long is marked failed and the lock freed.
TRAINING_STALE_AFTER_SECONDS = env_int("TRAINING_STALE_AFTER_SECONDS", 90)
# How often each web process asks the registry which versions are active (0: on every request).
MODEL_REGISTRY_CHECK_SECONDS = env_int("MODEL_REGISTRY_CHECK_SECONDS", 2)
IMPRESSION_RETENTION_DAYS = env_int("IMPRESSION_RETENTION_DAYS", 90)  # older impressions are pruned daily
ATTRIBUTION_WINDOW_HOURS = env_int("ATTRIBUTION_WINDOW_HOURS", 24)  # an event answers an impression this recent
# Each process writes the impressions it answered in one batch this often (0: each at once, on the request's
# thread; recommendations.services._ImpressionBuffer says why).
IMPRESSION_FLUSH_SECONDS = env_int("IMPRESSION_FLUSH_SECONDS", 1)
# Off only to measure what recording costs (bench/api_latency.py --impressions): answers are then not recorded,
# and events never attributed.
RECORD_IMPRESSIONS = env_bool("RECORD_IMPRESSIONS", True)
# Applicants per opening beyond which a position is shown less (ml.core.ranker): its blended score loses
# log(1 + excess / this). 20: a founder reviews about that many applications per hire; in the demo world it
# is above what 99% of open positions have, so only the crowded tail is lowered.
CROWDED_APPLICANTS_PER_OPENING = env_int("CROWDED_APPLICANTS_PER_OPENING", 20)
# How much the other side's interest (would they answer? ml.serving_set.ReverseInterest) adds to a founder's
# developers and investors and a developer's positions, in z-score units beside the blend's; 0 ranks one
# side's interest only. Chosen by `python bench/reciprocal_blend.py` (README, "Two-sided ranking"): on the
# demo world and one ten times its size, the largest weight that raised mutual matches@10 while neither
# developers' nor founders' forward NDCG@10 fell more than 3% (0.2 cost the demo world's developers 4.9%).
RECIPROCAL_WEIGHT = env_float("RECIPROCAL_WEIGHT", 0.15)

# API tokens (django-rest-knox): stored as digests, expiring, revocable; sent as `Authorization: Token <key>`.
TOKEN_TTL_HOURS = env_int("TOKEN_TTL_HOURS", 720)
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=TOKEN_TTL_HOURS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

# A reverse proxy in front (README "Production") overwrites X-Forwarded-Proto and X-Forwarded-For; only then
# may the service believe them. Without it any client could claim HTTPS or another address.
TRUSTED_PROXY = env_bool("TRUSTED_PROXY", False)

# Request bodies larger than this are refused with 413 before anything reads them.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BODY_BYTES", 2_621_440)

# The cache holds throttle counts: shared by every process in Redis when there is one, per process otherwise.
REDIS_URL = env_str("REDIS_URL")
CACHE_URL = env_str("CACHE_URL", REDIS_URL)
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL,
                "KEY_PREFIX": "recsys", "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}
    if CACHE_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "recsys_site.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "recsys_site.parsers.StrictJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "recsys_site.filters.BoundedSearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "recsys_site.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Every authenticated write counts against the user's "write" rate; log-in, sign-up and recommendations
    # name their own throttles (profiles.apis, recommendations.apis).
    "DEFAULT_THROTTLE_CLASSES": ["recsys_site.throttling.WriteThrottle"],
    # Rates per scope (recsys_site.throttling): log-ins and sign-ups per client address, writes and
    # recommendations per user. "<n>/<second|minute|hour|day>".
    "DEFAULT_THROTTLE_RATES": {
        "login": env_str("THROTTLE_LOGIN", "10/minute"),
        "register": env_str("THROTTLE_REGISTER", "10/hour"),
        "write": env_str("THROTTLE_WRITE", "300/minute"),
        "recommendations": env_str("THROTTLE_RECOMMENDATIONS", "300/minute"),
    },
    # The client address is X-Forwarded-For's last hop only behind the trusted proxy, REMOTE_ADDR otherwise.
    "NUM_PROXIES": 1 if TRUSTED_PROXY else 0,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Startup ecosystem recommendations API",
    "DESCRIPTION": "Profiles, catalog, interactions and hybrid recommendations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc load from this service's static files (drf-spectacular-sidecar, pinned in
    # requirements.txt), never from a CDN: /api/docs/ and /api/redoc/ work offline and behind a firewall.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No badge from the public validator service either (Swagger UI would send the schema's URL there).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Every operation lists the error statuses it can answer with (recsys_site/schema.py), after the enums.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "recsys_site.schema.document_error_responses",
    ],
    # One schema name per vocabulary, however many fields and filters use it.
    "ENUM_NAME_OVERRIDES": {
        "StageEnum": "profiles.models.Stage",
        "RoleEnum": "profiles.models.Role",
        "ItemTypeEnum": "profiles.models.ItemType",
        "InteractionKindEnum": "profiles.models.InteractionKind",
        "AlgorithmEnum": "ml.models.Algorithm",
        "BlendedComponentEnum": "ml.models.BLENDED",
        "PositionStatusEnum": "profiles.models.Position.Status",
        "RemotePreferenceEnum": "profiles.models.RemotePreference",
    },
}

# Celery: with no broker configured, tasks run in-process so the embedded default needs nothing else.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# A task is acknowledged when it ends, so a worker that dies mid-training leaves it for another worker.
# Redis hands an unacknowledged task to another worker after visibility_timeout: it must be longer than
# the longest training (the Two-Tower on a large catalog, hours), or a second worker starts the same run.
CELERY_TASK_ACKS_LATE = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 12 * 3600)}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# Production transport security; SECURE_SSL_REDIRECT=0 behind a TLS-terminating proxy or for plain local HTTP.
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    if TRUSTED_PROXY:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
