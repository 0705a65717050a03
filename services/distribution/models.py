"""Tables and API shapes of the distribution service."""

from sqlmodel import SQLModel

metadata = SQLModel.metadata
