"""python -m services.registration — serve the registration service."""

from services.registration.service import create_app
from shared.service import serve

if __name__ == "__main__":
    serve(create_app())
