"""Optional integrations, one module per extra: health_check, prometheus, otel."""
