"""prunex.bench (see DESIGN.md)."""
