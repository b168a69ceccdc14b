"""The service's URLs plus ``POST /bench/ten-items``: a DRF APIView serialising ten fixed items, with no
database, no authentication and no throttle. What the same load reaches on it is the ceiling the stack
(gunicorn, Django's middleware, DRF's parsing and rendering) puts on any endpoint; bench/api_latency.py
reports the recommendations' requests per second as a ratio of it."""
from django.urls import path
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from recsys_site.urls import urlpatterns as service_urlpatterns


class ItemSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    item_type = serializers.CharField()
    item_id = serializers.IntegerField()
    title = serializers.CharField()
    score = serializers.FloatField()


TEN_ITEMS = [{"rank": n + 1, "item_type": "position", "item_id": 1000 + n, "title": f"Backend Engineer {n}",
              "score": 1.0 - n / 10} for n in range(10)]


class TenItems(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def post(self, request):
        return Response({"results": ItemSerializer(TEN_ITEMS, many=True).data})


urlpatterns = [path("bench/ten-items", TenItems.as_view()), *service_urlpatterns]
