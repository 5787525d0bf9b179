"""The people of a municipality: schools, classes, children, guardians, staff."""
