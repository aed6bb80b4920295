"""Data quality: drift between a feature version and its baseline, alerts, and the scoreboard."""
