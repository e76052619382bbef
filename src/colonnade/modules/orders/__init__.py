"""orders module."""
