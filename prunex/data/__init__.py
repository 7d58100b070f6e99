"""prunex.data (see DESIGN.md)."""
