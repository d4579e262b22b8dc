"""The REST door: the django-ninja API at ``/agent/`` (``api.py``), its routers
(``reactions.py``, ``console.py``), and the middleware that keeps every error under
``/agent/`` JSON (``errors.py``)."""
