"""python -m services.notifications — serve the notifications service."""

from services.notifications.service import build_definition
from services.notifications.settings import NotificationsSettings
from shared.service import run
from shared.settings import load_settings

if __name__ == "__main__":
    settings = load_settings("notifications", NotificationsSettings)
    run(build_definition(settings), settings)
