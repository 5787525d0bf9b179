"""Public pages: the landing page (no sign-in)."""
