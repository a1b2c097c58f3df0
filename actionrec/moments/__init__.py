"""Finding the moment: labeled segments and shot changes from a dense timeline, and searching them."""
