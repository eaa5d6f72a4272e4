"""The project's own tools (build, serve, screenshots, README figures) and REPO, the one home
of the checkout's root: the models, web/ and the samples are found from it by every tool,
the benchmark and the command line alike."""

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def script_parser(doc: str) -> argparse.ArgumentParser:
    """A tool's parser whose --help is its module docstring, line breaks kept."""
    return argparse.ArgumentParser(description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
