"""The built-in export targets, registered through the exporter hook like any third-party target."""
