// Exporter: filled in by the Exporter issue.
