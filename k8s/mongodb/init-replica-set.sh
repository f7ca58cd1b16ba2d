#!/usr/bin/env bash
# Initiates the MongoDB replica set once and creates (or updates) one user per
# service, each allowed to read and write only its own database.
#
# Run by the `mongodb-init` service in docker-compose.yml and by the
# `mongodb-init` Job in k8s/. Idempotent: an initiated set is left alone and
# existing users get their password and roles re-applied, which is also how a
# service's MongoDB password is rotated (docs/operations.md).
#
# Why a replica set: owner-service uses multi-document transactions, which
# MongoDB only offers on a replica set (a single member is enough).
#
# Environment:
#   RS_NAME                     replica set name, e.g. rs0
#   RS_MEMBERS                  comma-separated host:port of every member; the
#                               first is where the set is initiated
#   MONGODB_ROOT_USERNAME       root user created by the mongo image on the first member
#   MONGODB_ROOT_PASSWORD
#   TRAVELER_MONGODB_USERNAME   user for traveler-service
#   TRAVELER_MONGODB_PASSWORD
#   TRAVELER_MONGODB_DATABASE   its database (MONGODB_DATABASE of traveler-service)
#   OWNER_MONGODB_USERNAME      user for owner-service
#   OWNER_MONGODB_PASSWORD
#   OWNER_MONGODB_DATABASE      its database (MONGODB_DATABASE of owner-service)
set -euo pipefail

for var in RS_NAME RS_MEMBERS MONGODB_ROOT_USERNAME MONGODB_ROOT_PASSWORD \
  TRAVELER_MONGODB_USERNAME TRAVELER_MONGODB_PASSWORD TRAVELER_MONGODB_DATABASE \
  OWNER_MONGODB_USERNAME OWNER_MONGODB_PASSWORD OWNER_MONGODB_DATABASE; do
  if [ -z "${!var:-}" ]; then
    echo "${var} is required" >&2
    exit 1
  fi
done

# mongosh keeps history and logs under $HOME; keep them off read-only or data paths.
export HOME=/tmp

IFS=',' read -r -a members <<< "${RS_MEMBERS}"
seed="${members[0]}"

# `ping` needs no authentication, so this works before users exist.
for member in "${members[@]}"; do
  echo "waiting for ${member}"
  for attempt in $(seq 1 60); do
    if mongosh --quiet --norc "mongodb://${member}/?directConnection=true" \
      --eval 'quit(db.adminCommand({ ping: 1 }).ok ? 0 : 1)' >/dev/null 2>&1; then
      break
    fi
    if [ "${attempt}" -eq 60 ]; then
      echo "${member} did not answer after 60 attempts" >&2
      exit 1
    fi
    sleep 5
  done
done

auth=(--username "${MONGODB_ROOT_USERNAME}" --password "${MONGODB_ROOT_PASSWORD}" --authenticationDatabase admin)

# 1. Initiate on the seed member (a direct connection: the set may not exist yet).
#    The root user exists only on the seed; the other members start empty, as
#    rs.initiate requires, and receive the users by initial sync.
mongosh --quiet --norc "mongodb://${seed}/admin?directConnection=true" "${auth[@]}" --eval '
  const name = process.env.RS_NAME;
  const hosts = process.env.RS_MEMBERS.split(",").map((h) => h.trim());
  let initiated = true;
  try {
    rs.status();
  } catch (e) {
    if (e.codeName !== "NotYetInitialized") throw e;
    initiated = false;
  }
  if (initiated) {
    print(`replica set ${name} already initiated`);
  } else {
    const members = hosts.map((host, i) => ({ _id: i, host }));
    printjson(rs.initiate({ _id: name, members }));
  }
'

# 2. Users, written through the primary once one is elected.
for attempt in $(seq 1 30); do
  if mongosh --quiet --norc "mongodb://${RS_MEMBERS}/admin?replicaSet=${RS_NAME}" "${auth[@]}" --eval '
    if (!db.hello().isWritablePrimary) quit(2);
    const adminDb = db.getSiblingDB("admin");
    const upsert = (prefix) => {
      const user = process.env[`${prefix}_MONGODB_USERNAME`];
      const pwd = process.env[`${prefix}_MONGODB_PASSWORD`];
      const roles = [{ role: "readWrite", db: process.env[`${prefix}_MONGODB_DATABASE`] }];
      if (adminDb.getUser(user)) {
        adminDb.updateUser(user, { pwd, roles });
        print(`updated user ${user}`);
      } else {
        adminDb.createUser({ user, pwd, roles });
        print(`created user ${user}`);
      }
    };
    upsert("TRAVELER");
    upsert("OWNER");
  '; then
    echo "replica set ${RS_NAME} ready"
    exit 0
  fi
  echo "no writable primary yet (attempt ${attempt})"
  sleep 5
done
echo "replica set ${RS_NAME} has no primary after 30 attempts" >&2
exit 1
