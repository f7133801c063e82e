"""The intake domain's registration: a lead import's chunks run as ledger jobs on the bulk queue."""

from app.intake import imports
from app.scheduling import registry

registry.register(imports.CHUNK_KIND, imports.run_import_chunk, queue="bulk", yields=True)
