"""Tables and API shapes of the referral service."""

from sqlmodel import SQLModel

metadata = SQLModel.metadata
