"""Create (or reset) the demo staff user admin/admin. Refuses to run unless DEBUG is on."""
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

USERNAME = PASSWORD = "admin"


class Command(BaseCommand):
    help = "Create the demo superuser admin/admin (DEBUG only: never in production settings)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("demo_admin creates a known password and only runs with DEBUG=1.")
        user, _ = get_user_model().objects.get_or_create(username=USERNAME, defaults={"email": "admin@example.com"})
        user.is_staff = user.is_superuser = True
        user.set_password(PASSWORD)
        user.save()
        self.stdout.write(self.style.WARNING(f"Demo staff user: {USERNAME} / {PASSWORD} (demo only)"))
