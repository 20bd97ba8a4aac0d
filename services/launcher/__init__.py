"""The platform launcher: the BingX simulator, the venue service and the kernel service as
child processes, then a short paper-trading session through the kernel's gRPC API (``make run``)."""
