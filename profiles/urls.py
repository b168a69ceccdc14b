from django.urls import path
from rest_framework.routers import SimpleRouter

from . import apis

router = SimpleRouter()
# The contract writes collections both with a slash (/developers/<user_id>/) and without one
# (/interactions); accepting either spares POST clients a redirect that would drop their body.
router.trailing_slash = "/?"
router.register("developers", apis.DeveloperViewSet, basename="developer")
router.register("founders", apis.FounderViewSet, basename="founder")
router.register("investors", apis.InvestorViewSet, basename="investor")
router.register("startups", apis.StartupViewSet, basename="startup")
router.register("positions", apis.PositionViewSet, basename="position")
router.register("skills", apis.SkillViewSet, basename="skill")
router.register("industries", apis.IndustryViewSet, basename="industry")
router.register("interactions", apis.InteractionViewSet, basename="interaction")

urlpatterns = [
    path("auth/token", apis.AuthTokenApi.as_view(), name="auth-token"),
    path("auth/register", apis.RegisterApi.as_view(), name="auth-register"),
    path("me", apis.MeApi.as_view(), name="me"),
    *router.urls,
]
