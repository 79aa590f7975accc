// Sends events to herald with libhoney-js, Honeycomb's JavaScript SDK, and
// prints each response's status as a JSON array on stdout.
//
//   node send.js <api-host> <key> <dataset> <unix-ms>
const Libhoney = require("libhoney");

const [apiHost, writeKey, dataset, at] = process.argv.slice(2);
const statuses = [];
const hny = new Libhoney({
  apiHost,
  writeKey,
  dataset,
  batchSizeTrigger: 10,
  batchTimeTrigger: 10,
  responseCallback: (responses) => {
    for (const r of responses) statuses.push(r.error ? String(r.error) : r.status_code);
  },
});

for (let i = 0; i < 25; i++) {
  const ev = hny.newEvent();
  ev.timestamp = new Date(Number(at) - i * 1000);
  ev.add({ route: i % 2 ? "/pay" : "/cart", duration_ms: i + 0.5, ok: i % 5 !== 0, "http.status_code": 200 });
  if (i === 0) {
    // Sampled already by the sender: libhoney-js keeps it and sends its rate.
    ev.sampleRate = 10;
    ev.sendPresampled();
  } else {
    ev.send();
  }
}

hny.flush().then(() => {
  process.stdout.write(JSON.stringify(statuses));
});
