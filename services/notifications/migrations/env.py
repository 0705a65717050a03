from services.notifications import models
from shared.migrations import run_env

run_env(models.metadata)
