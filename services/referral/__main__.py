from services.referral.service import DEFINITION
from shared.service import run

if __name__ == "__main__":
    run(DEFINITION)
