"""Stewardship over time: fixity audits of repository copies and archives, and restores."""
