"""Migration scripts; a package so they ship with the installed fleet package."""
