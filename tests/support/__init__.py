"""Helpers shared by tests: real external programs (Prometheus, docker-compose) on demand."""
