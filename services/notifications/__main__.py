"""python -m services.notifications — serve the notifications service."""

from services.notifications.service import create_app
from shared.service import serve

if __name__ == "__main__":
    serve(create_app())
