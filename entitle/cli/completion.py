"""`entitle completion SHELL`: a tab-completion script generated from the parser itself."""

from __future__ import annotations

import argparse

import shtab

SHELLS = ("bash", "zsh", "tcsh")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, tcsh)",
        description="bash: entitle completion bash > /etc/bash_completion.d/entitle; "
        "zsh: entitle completion zsh > \"${fpath[1]}/_entitle\"",
    )
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from entitle.cli import build_parser

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0
