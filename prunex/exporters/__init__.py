"""prunex.exporters (see DESIGN.md)."""
