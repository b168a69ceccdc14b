"""A changed password revokes the user's API tokens, whichever way it changed.

``set_password`` and ``save``, the admin's password form, ``manage.py changepassword``, an API: all end in
saving the user with a new password hash, so the check sits on the user model's save, comparing the
hash being saved with the stored one.
"""
from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from . import services

User = get_user_model()


@receiver(pre_save, sender=User, dispatch_uid="profiles.note_password_change")
def note_password_change(sender, instance, raw=False, update_fields=None, **kwargs):
    # A save that does not write the password (last_login's update, a partly loaded user) cannot change it.
    instance._password_changed = (
        not raw and not instance._state.adding and instance.pk is not None
        and (update_fields is None or "password" in update_fields)
        and sender.objects.filter(pk=instance.pk).exclude(password=instance.password).exists())


@receiver(post_save, sender=User, dispatch_uid="profiles.revoke_tokens_on_password_change")
def revoke_tokens_on_password_change(sender, instance, **kwargs):
    if getattr(instance, "_password_changed", False):
        instance._password_changed = False
        services.auth_tokens_revoke_all(user=instance)
