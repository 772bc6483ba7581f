"""The drop as a folder: finding drops, readiness, the key <-> folder registry, layout rules and safe reads."""
