"""Routers of the scoring API, one per resource."""
