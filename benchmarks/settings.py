"""Django settings for the benchmark runs: Eventdesk's, plus the benchmark read models.

The ``benchmarks`` app has no migrations: ``migrate --run-syncdb`` creates its
tables in the benchmark database only.
"""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "benchmarks"]
