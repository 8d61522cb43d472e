"""One module per ``spa-vl`` subcommand: ``add_arguments(parser)`` and ``run(args)``."""
