#!/bin/sh
# First start of the PostgreSQL container (docker-entrypoint-initdb.d): two roles, neither a superuser.
#   flagsvc_owner  owns the database and its tables; `migrate` and `grant_service_role` run as it.
#   flagsvc_app    the service: rows only, audit entries insert-only (manage.py grant_service_role).
# It runs only when the data volume is empty; on an existing volume, run the same SQL by hand
# (docs/operations.md, "Least privilege in the database").
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner_password="$FLAGSVC_OWNER_PASSWORD" -v app_password="$FLAGSVC_APP_PASSWORD" \
    -v database="$POSTGRES_DB" <<'SQL'
CREATE ROLE flagsvc_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
CREATE ROLE flagsvc_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';
ALTER DATABASE :"database" OWNER TO flagsvc_owner;
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
SQL
