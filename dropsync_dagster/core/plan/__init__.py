"""The frozen plan: per-file variables, metadata matching, templated targets, gates and the tables shown."""
