"""CLI sub-commands that live beside their subsystem; each module has ``add_parser(sub, commands)``."""
