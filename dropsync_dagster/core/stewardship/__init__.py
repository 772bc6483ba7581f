"""Stewardship over time: quarantine of held originals, fixity audits of repository copies and
archives, restores, reconciliation, period reports and alerts."""
