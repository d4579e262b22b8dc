"""Django settings for the test run: Eventdesk's, plus the tests' own read models."""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.readmodels"]
