from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from .health import HealthApi
from .views import ApiRootApi, landing

# Admin's "View site" is the landing page; its header links the staff pages too (templates/admin/base_site.html).
admin.site.site_url = "/"
admin.site.site_header = "Startup ecosystem recommendations: admin"
admin.site.site_title = "Recommendations admin"

# Every path here is listed in docs/api.md (tests/recsys_site/test_api_contract_doc.py holds them equal).
api_v1: list[URLPattern | URLResolver] = [
    path("", ApiRootApi.as_view(), name="api-root"),
    path("health", HealthApi.as_view(), name="health"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("", include("profiles.urls")),
    path("", include("recommendations.urls")),
]

urlpatterns = [
    path("", landing, name="landing"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    # Swagger UI and ReDoc from local static files (drf-spectacular-sidecar): no CDN, they work offline.
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("staff/", include("recommendations.staff_urls")),
]
