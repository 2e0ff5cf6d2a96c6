"""Figures: the per-patient tumour-board figure and matplotlib helpers (no pyplot)."""
