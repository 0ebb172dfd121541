"""``python -m allsource_lab.cli``: the ``allsource`` command."""

from allsource_lab.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
