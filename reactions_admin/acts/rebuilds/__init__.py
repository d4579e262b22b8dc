"""Rebuild a projection (blue/green): start, swap, cancel, roll back, with a reason, audited."""
