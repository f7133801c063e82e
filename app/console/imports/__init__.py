"""Import from the spreadsheet a clinic has (/console/import): upload a CSV or XLSX, check the column
each lead field comes from (guessed from the headers, else the clinic's last choice), preview what
the import would refuse or find duplicated, then run it as the API's import does (a bulk job, its
progress bar) and download the refused rows. One way to import: the same reader, mapping, checks
and bulk job as POST /api/leads/import (app/domains/intake/columns.py and imports.py)."""
