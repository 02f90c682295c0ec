FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HOST=0.0.0.0 PORT=8000
WORKDIR /app

COPY constraints.txt pyproject.toml ./
COPY sdk ./sdk
RUN pip install -c constraints.txt ./sdk . && useradd --system --uid 10001 flagsvc

COPY . .
RUN DEBUG=1 python manage.py collectstatic --noinput --verbosity 0

USER flagsvc
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"8000\")}/healthz')"
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn -c gunicorn.conf.py flagsvc.wsgi"]
