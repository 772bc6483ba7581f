"""Integrity: digests, sidecars, verified publishing, identity-checked moves, checks and lineage."""
