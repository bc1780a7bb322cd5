/* src/worker/heartbeat.h - periodic POST {hive}/v1/worker-heartbeat. */
#ifndef KILN_WORKER_HEARTBEAT_H
#define KILN_WORKER_HEARTBEAT_H

#include "kiln/status.h"
#include "worker/buf.h"

/* Writes the current heartbeat body (JSON) into out; 0, or -1 on failure. */
typedef int (*kiln__heartbeat_body_fn)(void *user, struct kiln__buf *out);

struct kiln__heartbeat;

/* Start a thread that sends a heartbeat at once, then every interval_s,
 * and sooner after a kiln__heartbeat_poke. A failed send is logged and
 * retried after min(interval_s, 5 s); it is never fatal. `user` is passed to
 * body_fn, which runs on the heartbeat thread. Fails only for a bad URL or
 * when the thread cannot start. */
kiln_status kiln__heartbeat_start(const char *hive_url, double interval_s, kiln__heartbeat_body_fn body_fn, void *user,
                                  struct kiln__heartbeat **out);
/* Send the next heartbeat now (the status changed). */
void kiln__heartbeat_poke(struct kiln__heartbeat *hb);
/* Send a last heartbeat (one try, 2 s at most), stop the thread, free. NULL is fine. */
void kiln__heartbeat_stop(struct kiln__heartbeat *hb);

#endif /* KILN_WORKER_HEARTBEAT_H */
