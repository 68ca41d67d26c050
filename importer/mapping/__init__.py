"""From rows to payloads: the YAML spec, values, coercion, lookups, the plan, validation, encoding and dedupe.

All of it works on whole Arrow columns; a bad row becomes an error column, not an exception.
"""
