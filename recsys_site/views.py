"""The pages a newcomer meets first: the landing page at ``/`` and the API's root at ``/api/v1/``.

Both only point elsewhere: the staff pages, the admin, the API's docs (Swagger UI and ReDoc, served from
local static files by drf-spectacular-sidecar), its schema, its health and its contract (docs/api.md).
"""
from django.shortcuts import render
from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

CONTRACT = "docs/api.md"  # in the repository: the API's contract in words, every endpoint listed


def api_links(request=None) -> dict[str, str]:
    """{what: where}, absolute URLs when there is a request."""
    links = {"docs": reverse("swagger-ui"), "redoc": reverse("redoc"), "schema": reverse("schema"),
             "health": reverse("health"), "token": reverse("auth-token"), "register": reverse("auth-register")}
    return {name: request.build_absolute_uri(path) if request else path for name, path in links.items()}


def landing(request):
    """``/``: what the service is and where everything lives (admin's "View site" comes here)."""
    return render(request, "recsys_site/landing.html", {"links": api_links(), "contract": CONTRACT})


API_ROOT = inline_serializer("ApiRoot", {
    "docs": serializers.URLField(help_text="Swagger UI."),
    "redoc": serializers.URLField(help_text="ReDoc, the same schema as one page."),
    "schema": serializers.URLField(help_text="The OpenAPI 3 schema (YAML; ?format=json for JSON)."),
    "health": serializers.URLField(),
    "token": serializers.URLField(help_text="POST a username and password for a token."),
    "register": serializers.URLField(help_text="POST to sign up as a developer, founder or investor."),
    "contract": serializers.CharField(help_text="Where the contract is written down, in the repository."),
})


class ApiRootApi(APIView):
    """``GET /api/v1/``: where the API's docs, schema and health are, for anyone."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(tags=["meta"], operation_id="api_root", summary="Where the docs, the schema and health are",
                   responses={200: API_ROOT})
    def get(self, request):
        return Response({**api_links(request), "contract": CONTRACT})
