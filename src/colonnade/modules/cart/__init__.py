"""cart module."""
