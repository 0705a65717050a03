"""``python -m haven.deploy``: the same as ``haven manifests``."""

from haven.deploy.cli import app

if __name__ == "__main__":
    app()
