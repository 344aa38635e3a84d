// The `mongo-init` service of compose.yaml, run once by mongosh against mongo1 (direct
// connection): initiates the three-member replica set rs0 unless it already is, then waits
// (bounded) until a member is a writable primary and exits 0; any failure exits non-zero, so
// the ACS containers, which depend on this service completing, do not start.
const members = [
  { _id: 0, host: "mongo1:27017", priority: 2 },
  { _id: 1, host: "mongo2:27017", priority: 1 },
  { _id: 2, host: "mongo3:27017", priority: 1 },
];
let initiated = true;
try {
  rs.status();
} catch (e) {
  initiated = false; // NotYetInitialized
}
if (!initiated) {
  const reply = rs.initiate({ _id: "rs0", members: members });
  if (reply.ok !== 1) {
    print("rs.initiate failed: " + JSON.stringify(reply));
    quit(1);
  }
}
for (let attempt = 0; attempt < 60; attempt++) {
  const hello = db.hello();
  if (hello.primary) {
    print("rs0 primary: " + hello.primary);
    quit(0);
  }
  sleep(1000);
}
print("rs0 has no primary after 60 s");
quit(1);
