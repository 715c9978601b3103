"""Benchmarks behind ``kdvision bench``: each module is one bench (NAME, HELP, add_arguments, run)."""
