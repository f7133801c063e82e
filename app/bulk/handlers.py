"""The bulk domain's registrations: the chunks of a bulk job run as ledger jobs on the bulk queue."""

from app.bulk import service, task_actions
from app.scheduling import registry

registry.register(service.CHUNK_KIND, service.run_tasks_chunk, queue="bulk", yields=True)
registry.register(task_actions.CHUNK_KIND, task_actions.run_chunk, queue="bulk", yields=True)
