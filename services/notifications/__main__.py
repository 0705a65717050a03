"""python -m services.notifications — serve the notifications service."""

from services.notifications.service import DEFINITION
from shared.service import run
from shared.settings import ServiceSettings, load_settings

if __name__ == "__main__":
    run(DEFINITION, load_settings("notifications", ServiceSettings))
