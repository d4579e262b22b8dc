"""Act on a stream-ordered reaction's parked streams: dismiss the whole stream, retry it now."""
