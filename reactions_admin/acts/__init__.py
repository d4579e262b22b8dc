"""What an operator DOES: one package per act.

Each act keeps its pure decider (``decider.py``: no Django, returns a decision or a typed
rejection) beside its handler (``handler.py``: authorize, lock, ask the decider, change the
rows and append the ``DecisionRegistered`` audit event in one transaction). The doors
(``reactions_admin.doors``) call the handlers; nothing here knows which door called.
"""
