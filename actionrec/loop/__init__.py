"""The improvement loop around tagging: what the tagger is unsure of, what people answer, and how
what the archive contains changes from run to run."""
