"""Operate a subscriber: retry now, pause, resume (with a reason, audited)."""
