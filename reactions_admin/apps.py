from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import pre_delete


class ReactionsAdminConfig(AppConfig):
    name = "reactions_admin"
    verbose_name = "Reactions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from config import checks, squashed  # noqa: F401  (registers the checks)
        from reactions_admin.acts.tokens.handler import revoke_tokens_of_deleted_user

        # Deleting a user revokes the user's tokens through the audited act first.
        pre_delete.connect(
            revoke_tokens_of_deleted_user,
            sender=settings.AUTH_USER_MODEL,
            dispatch_uid="reactions_admin.revoke_tokens_of_deleted_user",
        )
