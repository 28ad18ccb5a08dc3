FROM python:3.11-slim
WORKDIR /srv
COPY pyproject.toml piccolo_conf.py ./
COPY app ./app
COPY compat ./compat
COPY migrations ./migrations
RUN pip install --no-cache-dir -e .
ENV DATA_DIR=/data
EXPOSE 8000 2283
CMD ["python", "-m", "app", "serve"]
