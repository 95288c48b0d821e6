"""The ``hotline`` command's subcommands, one module per group; :mod:`hotline.cli` assembles them."""
