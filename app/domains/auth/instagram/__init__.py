"""A clinic's Instagram professional account (its token kept encrypted) and the Instagram users it knows."""
