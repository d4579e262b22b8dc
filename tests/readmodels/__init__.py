"""Read models only the tests write (the unit-of-work property and the worker tests).

Installed by ``tests.settings`` only; no migrations: the test database makes its tables
(``migrate --run-syncdb``, as pytest-django runs it).
"""
