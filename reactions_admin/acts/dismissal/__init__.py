"""Dismiss an event in a reaction: move the bookmark past a poison event (or delete a
parked stream's head), with a reason, audited."""
