#!/bin/sh
# /usr/local/bin/visage in the container image: ahead of /usr/bin/visage on PATH, so the
# image's entry point and `docker exec CONTAINER visage token create ...` both come here.
# Secrets from files (compose/Kubernetes secrets): VISAGE_JWT_SECRET_FILE and
# VISAGE_DATABASE_URL_FILE set VISAGE_JWT_SECRET and VISAGE_DATABASE_URL from the file's
# first line. Then it runs the real binary with the same arguments.
set -eu
for var in VISAGE_JWT_SECRET VISAGE_DATABASE_URL; do
    eval "file=\${${var}_FILE:-}"
    if [ -n "$file" ]; then
        if [ ! -r "$file" ]; then
            echo "visage: ${var}_FILE names $file, which cannot be read" >&2
            exit 1
        fi
        value=""
        IFS= read -r value < "$file" || true
        export "$var=$value"
        unset "${var}_FILE"
    fi
done
exec /usr/bin/visage "$@"
