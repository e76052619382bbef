"""checkout module: the purchase saga."""
