"""python -m services.registration — serve the registration service."""

from services.registration.service import DEFINITION
from shared.service import run

if __name__ == "__main__":
    run(DEFINITION)
