"""The ``loom`` command."""
