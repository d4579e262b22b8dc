"""What an operator SEES: the overview and its diagnosis in words, the lag charts, each
reaction's status, and the ``/metrics`` collector. Reads change nothing."""
