"""python -m services.distribution — serve the distribution service."""

from services.distribution.service import DEFINITION
from shared.service import run

if __name__ == "__main__":
    run(DEFINITION)
