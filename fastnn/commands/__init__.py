"""Subcommands of the ``fastnn`` CLI; each module has ``add_arguments(name, parser)`` and
``run(name, args) -> int``."""
