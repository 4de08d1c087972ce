"""Regulator reporting: reference geography, the plan as data, registry import and metrics."""
