"""Sign-in for the three kinds of user, and access decisions (access.py)."""
