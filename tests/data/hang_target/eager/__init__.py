"""A target whose task module talks to Redis at import time: `signoff hang eager.tasks`."""
