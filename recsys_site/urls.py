from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .health import HealthApi

api_v1 = [
    path("health", HealthApi.as_view(), name="health"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("", include("profiles.urls")),
    path("", include("recommendations.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("staff/", include("recommendations.staff_urls")),
]


def not_found(request, exception=None):
    """JSON 404 for API paths that match no route; Django's page for everything else."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"No endpoint at {request.path}. See /api/docs/ for the API."}, status=404)
    return page_not_found(request, exception)


handler404 = not_found
