"""python -m services.registration — serve the registration service."""

from services.registration.service import DEFINITION
from services.registration.settings import RegistrationSettings
from shared.service import run
from shared.settings import load_settings

if __name__ == "__main__":
    run(DEFINITION, load_settings("registration", RegistrationSettings))
