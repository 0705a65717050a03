"""python -m services.distribution — serve the distribution service."""

from services.distribution.service import create_app
from shared.service import serve

if __name__ == "__main__":
    serve(create_app())
