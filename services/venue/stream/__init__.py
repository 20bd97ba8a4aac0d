"""BingX WebSockets: the user-data stream (execution reports) and mark prices."""
