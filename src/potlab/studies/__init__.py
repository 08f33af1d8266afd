"""Declarative studies: a YAML file -> training runs -> evaluation -> report."""
