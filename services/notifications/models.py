"""Tables and API shapes of the notifications service."""

from sqlmodel import SQLModel

metadata = SQLModel.metadata
