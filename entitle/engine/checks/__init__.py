"""Semantic checks no schema can express, one module per kind of document."""
