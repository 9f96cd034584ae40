"""The ``vend`` command line: parse arguments, call a package, render with Rich."""
