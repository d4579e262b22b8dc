"""Django's PostgreSQL backend, with a pooled connection checked before use."""
