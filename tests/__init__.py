"""medgrpo tests (a regular package, so `tests` resolves here and not to verl's installed `tests`)."""
