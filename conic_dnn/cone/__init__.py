"""cone."""
