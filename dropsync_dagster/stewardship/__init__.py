"""Stewardship in Dagster: the fixity audit checks and schedule, the report and reconciliation job, alert sensors."""
