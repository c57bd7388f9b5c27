"""``neurodata.cli`` in a source checkout, where the command-line package is the top-level ``cli/`` folder.

Installed wheels hold the CLI as ``neurodata/cli`` (``package-dir`` in pyproject.toml maps it there), so the
ordinary import machinery finds it. A checkout keeps the folder at the top of the repository, beside
``neurodata/``, ``snn/`` and ``hw/``; there :func:`install` adds a finder that answers for ``neurodata.cli``
alone, so ``python -m neurodata.cli`` and the tests import it by the same name with nothing installed.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from importlib.machinery import ModuleSpec

CLI_NAME = "neurodata.cli"
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class CliFinder(importlib.abc.MetaPathFinder):
    """Finds ``neurodata.cli`` in ``folder`` (a checkout's ``cli/``) and nothing else.

    Parameters
    ----------
    folder:
        The folder holding the CLI package's ``__init__.py``.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def find_spec(self, fullname: str, path=None, target=None) -> ModuleSpec | None:
        if fullname != CLI_NAME:
            return None
        init = os.path.join(self.folder, "__init__.py")
        return importlib.util.spec_from_file_location(fullname, init, submodule_search_locations=[self.folder])


def checkout_cli_folder(package_dir: str = PACKAGE_DIR) -> str | None:
    """The checkout's ``cli/`` folder when ``package_dir`` (the ``neurodata`` folder) sits in a source
    checkout without an installed ``neurodata/cli``; else None.

    Parameters
    ----------
    package_dir:
        The folder of the ``neurodata`` package (this module's own by default).
    """
    if os.path.isdir(os.path.join(package_dir, "cli")):
        return None  # installed: the CLI is a plain subpackage
    root = os.path.dirname(package_dir)
    folder = os.path.join(root, "cli")
    if os.path.isfile(os.path.join(folder, "__init__.py")) and os.path.isfile(
        os.path.join(root, "pyproject.toml")
    ):
        return folder
    return None


def install(package_dir: str = PACKAGE_DIR) -> None:
    """Let ``import neurodata.cli`` find the checkout's ``cli/`` folder (once; nothing when installed).

    The finder goes first on ``sys.meta_path``, so an editable install of another checkout cannot answer
    for the CLI of the ``neurodata`` package this process actually imported.

    Parameters
    ----------
    package_dir:
        The folder of the ``neurodata`` package (this module's own by default).
    """
    folder = checkout_cli_folder(package_dir)
    if folder is None or any(isinstance(f, CliFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, CliFinder(folder))
