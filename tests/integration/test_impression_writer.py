"""The background writer of impressions, on its own connection, as a server runs it (IMPRESSION_FLUSH_SECONDS > 0).

Transactional: the writer thread's connection sees only committed rows."""
import time

import pytest
from django.utils import timezone

from recommendations.models import Impression
from recommendations.services import _ImpressionBuffer
from tests.factories import DeveloperFactory

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for_rows(count: int) -> int:
    deadline = time.monotonic() + 60  # the writer wakes every second; a loaded machine may be slow to run it
    while Impression.objects.count() < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return Impression.objects.count()


def test_the_writer_thread_writes_what_answers_left_in_the_buffer(settings):
    settings.IMPRESSION_FLUSH_SECONDS = 1
    user = DeveloperFactory().user
    buffer = _ImpressionBuffer()
    rows = [Impression(user=user, user_type="developer", created_at=timezone.now(), items=[f"position:{n}"])
            for n in range(3)]
    try:
        for row in rows:
            buffer.add(row)

        assert wait_for_rows(3) == 3
        assert set(Impression.objects.values_list("pk", flat=True)) == {row.pk for row in rows}
        buffer.add(Impression(user=user, user_type="developer", created_at=timezone.now()))
        assert wait_for_rows(4) == 4
    finally:
        buffer.close()
    assert not buffer._writer.is_alive()  # stopped, its connection closed: the test database can be dropped
    assert buffer.flush() == 0


def test_an_impression_of_a_user_deleted_meanwhile_does_not_stop_the_others(settings):
    """Foreign keys are checked at commit (Django declares them deferred): in autocommit, as the writer runs."""
    settings.IMPRESSION_FLUSH_SECONDS = 1
    kept, gone = DeveloperFactory().user, DeveloperFactory().user
    buffer = _ImpressionBuffer()
    buffer._closing.set()  # no writer thread: flushed by hand
    rows = [Impression(user_id=user.pk, user_type="developer", created_at=timezone.now())
            for user in (kept, gone, kept)]
    for row in rows:
        buffer.add(row)
    gone.delete()

    assert buffer.flush() == 2
    assert set(Impression.objects.values_list("pk", flat=True)) == {rows[0].pk, rows[2].pk}
