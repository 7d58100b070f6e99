"""prunex.passes (see DESIGN.md)."""
