// Health check of the `mongo` service in compose.yaml, run by mongosh every few seconds:
// initiates the one-member replica set rs0 on the first run (the official image's
// /docker-entrypoint-initdb.d scripts run against a temporary server without --replSet,
// so they cannot do it), then reports healthy once this member is a writable primary.
try {
  rs.status();
} catch (e) {
  rs.initiate({ _id: "rs0", members: [{ _id: 0, host: "mongo:27017" }] });
}
if (!db.hello().isWritablePrimary) {
  quit(1);
}
