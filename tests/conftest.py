"""Shared fixtures: users of each role and API clients authenticated as them."""
import pytest
from rest_framework.test import APIClient


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()
