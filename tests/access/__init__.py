"""Expected route-by-role tables, one module per domain.

Each module defines ``EXPECTED = {endpoint: roles}``; tests/test_access_matrix.py
joins them and walks every route of the application for every role.
"""
