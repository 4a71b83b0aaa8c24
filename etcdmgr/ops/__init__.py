"""What operators watch: metrics events, the metrics and health HTTP port, log lines, systemd."""
