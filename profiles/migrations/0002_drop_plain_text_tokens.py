"""API tokens moved to django-rest-knox, which stores digests. The old rest_framework.authtoken table held
every token in plain text and nothing reads it any more: drop it, so no copy of a live secret stays behind."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("profiles", "0001_initial")]

    operations = [migrations.RunSQL("DROP TABLE IF EXISTS authtoken_token", reverse_sql=migrations.RunSQL.noop)]
