"""prunex.train (see DESIGN.md)."""
