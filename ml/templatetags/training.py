"""Filters for training runs and versions in the staff pages and admin: algorithm names as people read them."""
from django import template

from ml.models import algorithm_label

register = template.Library()


@register.filter
def algorithm_labels(names) -> str:
    """["two_tower", "content_based"] -> "Two-Tower, Content-based"."""
    return ", ".join(algorithm_label(name) for name in names or [])


@register.filter(name="algorithm_label")
def one_algorithm_label(name) -> str:
    return algorithm_label(str(name))
