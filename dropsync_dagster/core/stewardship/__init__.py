"""Stewardship over time: fixity audits of repository copies and archives, restores,
reconciliation, period reports and alerts."""
