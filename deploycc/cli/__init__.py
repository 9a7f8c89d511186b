"""deploycc.cli: the ``deploycc`` command line (typer and rich).

``main`` is the registry: it imports every ``cmd_*`` module and merges each module's own typer
group into the root command; no command module imports it back. ``output`` prints for people
(rich tables, progress on stderr) and machines (``--json``); ``options`` declares the options
every command shares.

The top district: may import every other district. Nothing imports it.
"""
