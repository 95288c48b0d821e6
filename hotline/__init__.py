"""12345 hotline work-order pipeline: CLI, settings and the month's generator."""
