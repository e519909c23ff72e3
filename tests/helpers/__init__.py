"""Test helpers, imported one way: ``from tests.helpers.<module> import ...``."""
