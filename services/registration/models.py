"""Tables and API shapes of the registration service."""

from sqlmodel import SQLModel

metadata = SQLModel.metadata
