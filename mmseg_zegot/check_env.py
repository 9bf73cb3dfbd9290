# Copyright (c) mmseg_zegot contributors. All rights reserved.
"""Print the environment report: ``python -m mmseg_zegot.check_env``.

Exits with status 1 when a known-bad combination is found.
"""
import sys

from mmseg_zegot.utils.collect_env import (
    collect_env,
    installed_versions,
    known_problems,
)


def main() -> int:
    for name, value in collect_env().items():
        print(f'{name}: {value}')
    problems = known_problems(installed_versions())
    for problem in problems:
        print(f'WARNING: {problem}')
    if not problems:
        print('No known-bad combination found.')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
