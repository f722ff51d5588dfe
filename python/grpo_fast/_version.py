# The extension is built from the same Cargo workspace version that maturin gives the package, and
# importing it is free here (the data path needs it anyway), unlike importlib.metadata (~17 ms).
try:
    from grpo_fast._native import __version__
except ImportError:  # a source tree without a built extension
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("grpo-fast")
    except PackageNotFoundError:
        __version__ = "0.0.0+unknown"
