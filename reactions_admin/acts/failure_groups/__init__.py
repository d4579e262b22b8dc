"""Act on the failures that share an error fingerprint: preview, dismiss or retry them
all at once, in one transaction."""
