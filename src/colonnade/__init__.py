"""Colonnade: a commerce platform of independent modules that carry one roof."""
