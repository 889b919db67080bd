"""Recommendation models; see base.py for the interface and registry."""
