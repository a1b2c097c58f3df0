"""The Parquet lake: table schemas (``schema``), reading and writing tables and the model registry
(``lake``), and read-only SQL (``query``). Loads without torch."""
