"""The ``bestand`` subcommands, one module per group; :mod:`bestand.cli` wires them up."""
