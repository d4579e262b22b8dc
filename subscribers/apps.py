from django.apps import AppConfig


class SubscribersConfig(AppConfig):
    name = "subscribers"
    verbose_name = "Subscribers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from subscribers.rebuilds import checks  # noqa: F401  (registers the system checks)
