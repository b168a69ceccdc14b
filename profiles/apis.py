"""The profiles part of /api/v1 (docs/api-v1.md): auth, profiles, catalog and interactions.

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

from recsys_site.exceptions import DomainError

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
    # No authentication: a stale session must not turn a log-in into a CSRF failure.
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=TokenRequestSerializer, responses={200: TokenSerializer}, tags=["auth"])
    def post(self, request):
        credentials = TokenRequestSerializer(data=request.data)
        credentials.is_valid(raise_exception=True)
        user = authenticate(request, **credentials.validated_data)
        if user is None:
            raise DomainError("Unable to log in with that username and password.")
        return Response({"token": services.auth_token_issue(user=user).key})


class RegisterApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(request=RegisterSerializer, responses={201: RegisteredSerializer}, tags=["auth"])
    def post(self, request):
        registration = RegisterSerializer(data=request.data)
        registration.is_valid(raise_exception=True)
        user = services.user_register(**registration.validated_data)
        body = {"user_id": user.pk, "role": registration.validated_data["role"], "token": user.auth_token.key}
        return Response(body, status=status.HTTP_201_CREATED)


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
