from django.apps import AppConfig


class ReadModelsConfig(AppConfig):
    """The tests' own read models (never installed outside the test run)."""

    name = "tests.readmodels"
    label = "test_readmodels"
    default_auto_field = "django.db.models.AutoField"
