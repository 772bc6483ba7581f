"""Stewardship of a drop after its run: quarantine of held originals."""
