"""The spec: load YAML with positions, check it against the schema and the semantic rules, build the typed model."""
