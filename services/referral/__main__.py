"""python -m services.referral — serve the referral service."""

from services.referral.service import create_app
from shared.service import serve

if __name__ == "__main__":
    serve(create_app())
