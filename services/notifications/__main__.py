"""python -m services.notifications — serve the notifications service."""

from services.notifications.service import DEFINITION
from shared.service import run

if __name__ == "__main__":
    run(DEFINITION)
