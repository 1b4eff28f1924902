#!/bin/sh
# Back up gradbot: a consistent PostgreSQL dump and the content-addressed file store.
# BACKUP_DIR (default /var/backups/gradbot) keeps KEEP_DAYS (default 14) days. The data key is NOT
# in the backup on purpose: store it apart (a dump without its key holds no readable names or IDs).
# Restore: docs/deploy.md "Backups and restore".
set -eu
BACKUP_DIR=${BACKUP_DIR:-/var/backups/gradbot}
KEEP_DAYS=${KEEP_DAYS:-14}
DATA_DIR=${GRADBOT_DATA_DIR:-/var/lib/gradbot}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$BACKUP_DIR"
# postgresql+asyncpg://user:pass@host:port/db -> postgresql://user:pass@host:port/db for pg_dump
PGURL=$(printf '%s' "${GRADBOT_DATABASE_URL:?}" | sed 's#^postgresql+asyncpg://#postgresql://#; s#?.*$##')
pg_dump --format=custom --no-owner --file="$BACKUP_DIR/db-$STAMP.dump" "$PGURL"
# Files are immutable and named by their SHA-256: a plain archive is consistent even while serving.
tar -C "$DATA_DIR" -czf "$BACKUP_DIR/files-$STAMP.tar.gz" files
find "$BACKUP_DIR" -name 'db-*.dump' -mtime +"$KEEP_DAYS" -delete
find "$BACKUP_DIR" -name 'files-*.tar.gz' -mtime +"$KEEP_DAYS" -delete
echo "gradbot backup $STAMP: $(du -sh "$BACKUP_DIR/db-$STAMP.dump" | cut -f1) database, $(du -sh "$BACKUP_DIR/files-$STAMP.tar.gz" | cut -f1) files"
