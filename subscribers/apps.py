from django.apps import AppConfig


class SubscribersConfig(AppConfig):
    name = "subscribers"
    verbose_name = "Subscribers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import got_request_exception

        from config.pooler import explain_request_failure
        from subscribers.rebuilds import checks  # noqa: F401  (registers the system checks)

        # A console request that failed on a prepared statement says what to set.
        got_request_exception.connect(explain_request_failure, dispatch_uid="eventdesk-pooler")
