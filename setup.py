"""The one thing pyproject.toml cannot say: the wheel carries the checkout's top-level suites/,
fixtures/ and loadtests/ inside the package (signoff._suites, ...), so an installed signoff
runs anywhere. Every other setting is in pyproject.toml."""

from setuptools import find_packages, setup

# package name in the wheel -> folder of the checkout (signoff/bundled.py finds them)
BUNDLED = {
    "signoff._suites": "suites",
    "signoff._fixtures": "fixtures",
    "signoff._loadtests": "loadtests",
}

setup(
    packages=[*find_packages(include=["signoff", "signoff.*"]), *BUNDLED],
    package_dir=BUNDLED,
)
