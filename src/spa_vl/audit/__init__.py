"""Contamination audit: text and image fingerprints, eval-set adapters, scopes, reports."""
