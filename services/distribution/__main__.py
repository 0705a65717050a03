"""python -m services.distribution — serve the distribution service."""

from services.distribution.service import DEFINITION
from services.distribution.settings import DistributionSettings
from shared.service import run
from shared.settings import load_settings

if __name__ == "__main__":
    run(DEFINITION, load_settings("distribution", DistributionSettings))
