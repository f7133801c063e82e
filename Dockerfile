FROM python:3.11-slim
WORKDIR /srv
COPY . .
RUN pip install --no-cache-dir -e .
CMD ["gunicorn", "-c", "python:app.telemetry.gunicorn_config", "app:create_app()", "--bind", "0.0.0.0:8000", "--workers", "2", "--worker-class", "gthread", "--threads", "4"]
