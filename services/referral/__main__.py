"""python -m services.referral — serve the referral service."""

from services.referral.service import DEFINITION
from shared.service import run
from shared.settings import ServiceSettings, load_settings

if __name__ == "__main__":
    run(DEFINITION, load_settings("referral", ServiceSettings))
