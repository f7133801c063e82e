"""Duplicates to merge or dismiss: two leads staff say are the same family become one (`merge`), or
are never suggested as duplicates of each other again (`dismiss`)."""
