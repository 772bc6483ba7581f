"""`sync.yml`: its schema, a bounded YAML reader, error locations and bounded regexes."""
