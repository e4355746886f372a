"""Flow documents: their schema, validation with JSON paths, and the expression language."""
