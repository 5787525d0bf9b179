"""The guardian's pages."""
