from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profiles"
    verbose_name = "People and catalog"

    def ready(self):
        from . import signals  # noqa: F401  (connects the receivers)
