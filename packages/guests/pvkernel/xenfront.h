/*
 * The xenbus side of a PV frontend (blkfront, netfront): where its device
 * directory and its backend are, and the handshake with the backend as a
 * state machine that never blocks.  Xen's protocol (xen-protocols.md §3.4,
 * io/xenbus.h): the backend says InitWait, the front sets up its rings and
 * event channel and writes their keys, the backend says Connected.
 *
 * Why a state machine: when a driver domain dies, its frontends wait for
 * the new incarnation.  A front that waited in a loop would stop the whole
 * kernel — a guest whose blkback is down would stop answering pings.
 * xenfront_step() does one look and returns; the device's poll calls it
 * again, so the guest's other devices keep running meanwhile (Linux does
 * the same from xenbus watch callbacks).
 */
#ifndef PVKERNEL_XENFRONT_H
#define PVKERNEL_XENFRONT_H

#include <stdint.h>
#include "kernel.h"

#define XENFRONT_PATH 96

enum xenfront_phase {
    XENFRONT_CONNECTED,        /* rings up, backend Connected */
    XENFRONT_AWAIT_INITWAIT,   /* we said Initialising; waiting for the backend's InitWait */
    XENFRONT_AWAIT_CONNECTED,  /* our keys are written; waiting for the backend's Connected */
};

struct xenfront {
    char node[XENFRONT_PATH];          /* device/<type>/<devid> */
    char backend[XENFRONT_PATH];       /* what our `backend` node names */
    char be_state_path[XENFRONT_PATH + 8];
    char watched_state[XENFRONT_PATH + 8];   /* the backend state node we watch, "" if none */
    char watch_token[32];
    domid_t backend_id;
    int phase;
    uint64_t deadline_ns;     /* give up the handshake then */
    uint64_t next_look_ns;    /* a look without a watch event, as a safety net */
};

/* What the device does at each step of the handshake. */
struct xenfront_ops {
    /* The backend is in InitWait: allocate and grant rings, bind a channel, write our keys. 0 or -errno. */
    int (*setup)(void *dev);
    /* Let go of rings, grants and channel (also after a failed setup). */
    void (*teardown)(void *dev);
    /* The backend is Connected: read what it published. 0 or -errno. */
    int (*connected)(void *dev);
    /* The state we write after setup: Initialised (blkfront waits for Connected) or Connected (netfront). */
    int state_after_setup;
};

/* Name the device directory and watch token; read our `backend` nodes. 0 or -errno. */
int xenfront_init(struct xenfront *f, const char *node, const char *token);
/* Read our `backend`/`backend-id` nodes; 1 if they changed, 0 if not, <0 on error. */
int xenfront_read_backend(struct xenfront *f);
/* The backend's state, or -1 if its node is gone. */
int xenfront_backend_state(struct xenfront *f);
/* Our `backend` node still names the backend we use, and it says Connected. */
int xenfront_healthy(struct xenfront *f);
/* Whether a watch event for this device arrived since last asked. */
int xenfront_event(struct xenfront *f);
/* Start (or restart) the handshake: tear down, say Initialising, wait for InitWait; give up after timeout_ns. */
void xenfront_begin(struct xenfront *f, const struct xenfront_ops *ops, void *dev, uint64_t timeout_ns);
/*
 * Until when a driver waiting on this handshake may sleep: 0 if a step is due
 * now (a watch event is pending, or the safety-net look has come), else the
 * time of the next look.  A waiter that slept on kernel_wait(0) instead
 * could miss an event already taken off the ring by an earlier request.
 */
uint64_t xenfront_sleep_until(struct xenfront *f);
/* One look, never blocking: 1 when connected by this step, 0 still waiting, <0 gave up (-XEN_ETIMEDOUT,
 * -XEN_ENOMEM, or -XEN_ENODEV: the toolstack took the device away). */
int xenfront_step(struct xenfront *f, const struct xenfront_ops *ops, void *dev);
/* The whole handshake, waiting (boot, hotplug): 0 or -errno. */
int xenfront_connect(struct xenfront *f, const struct xenfront_ops *ops, void *dev, uint64_t timeout_ns);
/* Stop watching the device (it is gone for good). */
void xenfront_unwatch(struct xenfront *f);
/* Did the toolstack take this device away (backend online=0, or the frontend's `backend` key gone)?
 * 0 means the backend merely went away (its domain died) and the front should reconnect. */
int xenbus_device_detached(const char *frontend_dir, const char *backend_dir);
/* Read <backend>/<key> as a number, dflt if absent. */
long xenfront_backend_int(struct xenfront *f, const char *key, long dflt);

#endif
