FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HOST=0.0.0.0 PORT=8000
WORKDIR /app

COPY constraints.txt pyproject.toml ./
COPY sdk ./sdk
# gcc only while installing: mypyc compiles the engine's hot path (sdk/setup.py), then it goes.
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null \
    && pip install -c constraints.txt ./sdk . \
    && python -c "import flagsvc_sdk.engine as e; assert e.COMPILED, 'engine not compiled'" \
    && apt-get purge -y -qq gcc libc6-dev >/dev/null && apt-get autoremove -y -qq >/dev/null \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 flagsvc

COPY . .
RUN DEBUG=1 python manage.py collectstatic --noinput --verbosity 0

USER flagsvc
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"8000\")}/healthz')"
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn -c gunicorn.conf.py flagsvc.wsgi"]
