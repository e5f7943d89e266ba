"""The zoo's own model plugins, one sub-package per architecture."""
