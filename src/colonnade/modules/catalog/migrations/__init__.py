"""catalog's migrations (a package, so the import contracts can name it)."""
