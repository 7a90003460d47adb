"""The ``portable-creds`` commands, one module per command family.

Contract for a command module (``portable_creds/commands/<name>.py``, listed in
``portable_creds.cli.COMMAND_MODULES``):

- **required** ``register(subparsers) -> None``: add its command(s) with
  ``_common.add_command(subparsers, "name", help=...)`` (so the global options work after the
  command name too) and ``parser.set_defaults(func=handler)``, where
  ``handler(args: argparse.Namespace) -> int`` returns the exit code.
- **optional** ``add_global_options(parser: argparse.ArgumentParser) -> None``: contribute
  global options (e.g. ``--config``, ``--profile``). Called before any ``register``. Give them
  ``default=argparse.SUPPRESS`` (the parser's default) and read with ``getattr(args, n, None)``.
- **optional** ``settings_layer(args) -> Mapping[str, str]``: values (keys ``backend``,
  ``wallet``, ``home``, ``secret_file``, ``prefix``, ``kek_version``) that rank below flags and
  environment variables and above the defaults - where profiles plug in.

Module top level imports only the standard library and ``_common``: ``portable-creds --help``
imports every command module, and must stay fast and free of cloud SDKs. Import the store,
drivers and anything heavy inside the handler. Expected failures are raised as
``portable_creds.errors.PortableCredsError`` subclasses; ``cli.main`` turns them into one
stderr line and the class's exit code. Handlers never print secret material except where
that is the command's output (``get``), and then only on stdout.
"""
