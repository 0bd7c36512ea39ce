"""The ``exportlake`` command: one module per command, ``main`` for the parser, ``exitcodes`` for exit codes."""
