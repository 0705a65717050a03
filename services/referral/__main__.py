"""python -m services.referral — serve the referral service."""

from services.referral.context import ReferralContext
from services.referral.service import build_definition
from services.referral.settings import ReferralSettings
from shared.service import run
from shared.settings import load_settings

if __name__ == "__main__":
    settings = load_settings("referral", ReferralSettings)
    run(build_definition(ReferralContext(settings)), settings)
