"""The profiles part of /api/v1 (docs/api.md): auth, profiles, catalog and interactions.

Views stay thin: a serializer validates, one service writes or one selector reads, a serializer
answers. Plain CRUD uses ViewSets; the few one-off endpoints are APIViews.
"""
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from recsys_site.authentication import TokenAuthentication
from recsys_site.exceptions import DomainError
from recsys_site.throttling import LoginThrottle, RegisterThrottle

from . import selectors, services
from .filters import PositionFilter, SkillFilter, StartupFilter
from .models import Role
from .permissions import (
    IsFounderToCreate,
    IsOwnProfileOrStaff,
    IsStaffOrReadOnly,
    IsStartupFounderOrReadOnly,
    ensure_can_manage_startup,
)
from .serializers import (
    MAX_ID,
    DeveloperSerializer,
    FounderSerializer,
    IndustrySerializer,
    InteractionQuerySerializer,
    InteractionSerializer,
    InvestorSerializer,
    MeSerializer,
    PositionSerializer,
    RegisteredSerializer,
    RegisterSerializer,
    SkillSerializer,
    StartupSerializer,
    TokenRequestSerializer,
    TokenSerializer,
)


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


class IdLookupMixin:
    """Ids in URLs are checked before they reach the database, so that "1.5", "abc" or a number wider
    than a database integer is a JSON 404 like any other missing row, never a 500."""

    lookup_value_regex = "[^/]+"

    def get_object(self):
        value = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        if not (value.isascii() and value.isdigit() and int(value) <= MAX_ID):
            raise NotFound(f"{value!r} is not an id; ids are positive whole numbers.")
        return super().get_object()


# --- auth ----------------------------------------------------------------------------------------

class AuthTokenApi(APIView):
    """POST logs in (a new token), DELETE logs out (revokes the token the request is made with)."""

    def logging_in(self) -> bool:
        # The schema generator asks for the authenticators before it gives the view a request.
        return getattr(self.request, "method", None) == "POST"

    def get_authenticators(self):
        # Logging in reads no credentials: a stale session must not turn it into a CSRF failure. Logging out
        # is done with the token being revoked.
        return [] if self.logging_in() else [TokenAuthentication()]

    def get_permissions(self):
        return [AllowAny()] if self.logging_in() else super().get_permissions()

    def get_throttles(self):
        return [LoginThrottle()] if self.logging_in() else super().get_throttles()

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenSerializer}, tags=["auth"])
    def post(self, request):
        credentials = TokenRequestSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        user = authenticate(request, **credentials.validated_data)
        if user is None:
            raise DomainError("Unable to log in with that username and password.")
        issued = services.auth_token_issue(user=user)
        return Response(TokenSerializer({"token": issued.key, "expires_at": issued.token.expiry}).data)

    @extend_schema(request=None, responses={204: None}, tags=["auth"])
    def delete(self, request):
        services.auth_token_revoke(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RegisterApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [RegisterThrottle]

    @extend_schema(request=RegisterSerializer, responses={201: RegisteredSerializer}, tags=["auth"])
    def post(self, request):
        registration = RegisterSerializer(data=request.data)
        registration.is_valid(raise_exception=True)
        user, issued = services.user_register(**registration.validated_data)
        body = {"user_id": user.pk, "role": registration.validated_data["role"], "token": issued.key,
                "expires_at": issued.token.expiry}
        return Response(RegisteredSerializer(body).data, status=status.HTTP_201_CREATED)


class MeApi(APIView):
    @extend_schema(responses={200: MeSerializer}, tags=["auth"])
    def get(self, request):
        return Response(MeSerializer(request.user).data)


# --- profiles ------------------------------------------------------------------------------------

class ProfileViewSet(IdLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                     viewsets.GenericViewSet):
    """A role's profiles, addressed by user id. Profiles are created by registration, not here.

    Non-staff users see only their own profile: another's is a 403, the list holds only theirs.
    """

    permission_classes = [IsAuthenticated, IsOwnProfileOrStaff]
    pagination_class = Pagination
    lookup_url_kwarg = "user_id"
    search_fields = ["user__username"]
    ordering_fields = ["user_id"]

    def get_profiles(self):
        raise NotImplementedError

    def get_queryset(self):
        profiles = self.get_profiles()
        if self.action == "list" and not self.request.user.is_staff:
            profiles = profiles.filter(pk=self.request.user.pk)
        return profiles


class DeveloperViewSet(ProfileViewSet):
    serializer_class = DeveloperSerializer

    def get_profiles(self):
        return selectors.developer_list()

    def perform_update(self, serializer):
        serializer.instance = services.developer_update(developer=serializer.instance, data=serializer.validated_data)


class FounderViewSet(ProfileViewSet):
    serializer_class = FounderSerializer

    def get_profiles(self):
        return selectors.founder_list()

    def perform_update(self, serializer):
        serializer.instance = services.founder_update(founder=serializer.instance, data=serializer.validated_data)


class InvestorViewSet(ProfileViewSet):
    serializer_class = InvestorSerializer

    def get_profiles(self):
        return selectors.investor_list()

    def perform_update(self, serializer):
        serializer.instance = services.investor_update(investor=serializer.instance, data=serializer.validated_data)


# --- catalog -------------------------------------------------------------------------------------

class StartupViewSet(IdLookupMixin, viewsets.ModelViewSet):
    serializer_class = StartupSerializer
    permission_classes = [IsAuthenticated, IsFounderToCreate, IsStartupFounderOrReadOnly]
    pagination_class = Pagination
    filterset_class = StartupFilter
    search_fields = ["name", "description"]
    ordering_fields = ["created_at", "name", "funding_raised", "team_size"]

    def get_queryset(self):
        return selectors.startup_list()

    def perform_create(self, serializer):
        founder = self.request.user.founder if selectors.role_of(self.request.user) == Role.FOUNDER else None
        serializer.instance = services.startup_create(founder=founder, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.startup_update(startup=serializer.instance, data=serializer.validated_data)

    def perform_destroy(self, instance):
        services.startup_delete(startup=instance)


class PositionViewSet(IdLookupMixin, viewsets.ModelViewSet):
    serializer_class = PositionSerializer
    permission_classes = [IsAuthenticated, IsStartupFounderOrReadOnly]
    pagination_class = Pagination
    filterset_class = PositionFilter
    search_fields = ["title", "description"]
    ordering_fields = ["created_at", "title", "salary_min", "salary_max"]

    def get_queryset(self):
        return selectors.position_list()

    def perform_create(self, serializer):
        ensure_can_manage_startup(self.request.user, serializer.validated_data["startup"])
        serializer.instance = services.position_create(**serializer.validated_data)

    def perform_update(self, serializer):
        # Moving a position needs the right to manage the startup it moves to as well.
        if "startup" in serializer.validated_data:
            ensure_can_manage_startup(self.request.user, serializer.validated_data["startup"])
        serializer.instance = services.position_update(position=serializer.instance, data=serializer.validated_data)

    def perform_destroy(self, instance):
        services.position_delete(position=instance)


class SkillViewSet(IdLookupMixin, viewsets.ModelViewSet):
    serializer_class = SkillSerializer
    permission_classes = [IsAuthenticated, IsStaffOrReadOnly]
    pagination_class = Pagination
    filterset_class = SkillFilter
    search_fields = ["name"]
    ordering_fields = ["name"]

    def get_queryset(self):
        return selectors.skill_list()

    def perform_create(self, serializer):
        serializer.instance = services.skill_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.skill_update(skill=serializer.instance, data=serializer.validated_data)

    def perform_destroy(self, instance):
        services.skill_delete(skill=instance)


class IndustryViewSet(IdLookupMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = IndustrySerializer
    pagination_class = Pagination
    search_fields = ["name"]
    ordering_fields = ["name"]

    def get_queryset(self):
        return selectors.industry_list()


# --- interactions --------------------------------------------------------------------------------

class InteractionViewSet(viewsets.GenericViewSet):
    serializer_class = InteractionSerializer
    pagination_class = Pagination
    # The list's query is validated by InteractionQuerySerializer, which also decides whose list it is.
    filter_backends: list = []

    @extend_schema(parameters=[InteractionQuerySerializer])
    def list(self, request):
        query = InteractionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        user_id = query.validated_data.pop("user_id", request.user.pk)
        if user_id != request.user.pk and not request.user.is_staff:
            raise PermissionDenied("You may list only your own interactions; user_id is for staff.")
        page = self.paginate_queryset(selectors.interaction_list(user_id=user_id, **query.validated_data))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create(self, request):
        event = self.get_serializer(data=request.data)
        event.is_valid(raise_exception=True)
        interaction = services.interaction_record(user=request.user, **event.validated_data)
        return Response(self.get_serializer(interaction).data, status=status.HTTP_201_CREATED)
