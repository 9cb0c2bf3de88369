"""Metric providers (Prometheus) and the judges that turn values into verdicts."""
