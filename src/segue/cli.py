"""segue's command line: a thin layer over the library (see ``segue.commands``)."""

from __future__ import annotations

import importlib
import logging
import os

from segue.commands import COMMAND_MODULES, app
from segue.commands._app import install_signal_handlers

for _module in COMMAND_MODULES:
    importlib.import_module(f"segue.commands.{_module}")


def main() -> None:
    logging.basicConfig(level=os.environ.get("SEGUE_LOG", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    install_signal_handlers()
    app()


if __name__ == "__main__":
    main()
