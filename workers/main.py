"""The Celery app the processes run: `celery -A workers.main worker|beat`, and Flower."""

from workers.celery_app import create_celery

app = create_celery()
