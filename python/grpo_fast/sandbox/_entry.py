"""Console-script entry point `grpo-sandboxd`: the daemon compiled into the extension module."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from grpo_fast import _native
    except ImportError as exc:  # pragma: no cover - broken install
        sys.exit(f"grpo-sandboxd: the native extension is missing: {exc}")
    entry = getattr(_native, "sandboxd_main", None)
    if entry is None:
        sys.exit("grpo-sandboxd: this build of grpo_fast._native has no sandbox daemon; "
                 "build it with `cargo build --release -p grpo-sandbox` and set GRPO_SANDBOXD")
    sys.exit(entry(sys.argv))


if __name__ == "__main__":
    main()
