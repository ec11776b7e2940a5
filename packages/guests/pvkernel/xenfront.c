/*
 * The frontend handshake as a state machine (xenfront.h).  Each step is a
 * few xenstore round trips, during which the kernel does nothing else; so
 * steps run when a watch on our `backend` node or on the backend's state
 * fires, and otherwise only every LOOK_NS (a safety net for an event
 * missed while xenstored itself restarted).  Looking every 50 ms instead
 * cost a guest waiting for its blkback one ping in six on a loaded host,
 * every second still one in thirty.
 */
#include "kernel.h"
#include "klib.h"
#include "xenfront.h"

#define LOOK_NS (5000ull * 1000000ull)

/*
 * libxl's device removal writes online=0 and state=Closing in one
 * transaction, waits for Closed, then removes both directories in another.
 * Read `online` first and the frontend's `backend` second: whichever side of
 * that removal each read lands on, a detach is seen as one.  (The other order
 * could read `backend` just before the removal and `online` just after it,
 * and take a detach for a dead driver domain.)  A driver domain that dies
 * loses its whole /local/domain/<id>, so `online` is gone while the
 * frontend's `backend` stays until the toolstack rebinds it.
 */
int xenbus_device_detached(const char *frontend_dir, const char *backend_dir)
{
    char path[256], buf[8];
    snprintk(path, sizeof path, "%s/online", backend_dir);
    int rc = xenbus_read(XBT_NIL, path, buf, sizeof buf);
    if (rc >= 0) return strcmp(buf, "0") == 0;
    snprintk(path, sizeof path, "%s/backend", frontend_dir);
    char be[256];
    return xenbus_read(XBT_NIL, path, be, sizeof be) == -XEN_ENOENT;
}

int xenfront_read_backend(struct xenfront *f)
{
    char path[XENFRONT_PATH + 16], be[XENFRONT_PATH];
    long id;
    snprintk(path, sizeof(path), "%s/backend", f->node);
    int rc = xenbus_read(XBT_NIL, path, be, sizeof(be));
    if (rc < 0) return rc;
    snprintk(path, sizeof(path), "%s/backend-id", f->node);
    if ((rc = xenbus_read_int(XBT_NIL, path, &id)) < 0) return rc;
    int changed = strcmp(be, f->backend) != 0 || (domid_t)id != f->backend_id;
    memcpy(f->backend, be, sizeof(be));
    f->backend_id = (domid_t)id;
    snprintk(f->be_state_path, sizeof(f->be_state_path), "%s/state", f->backend);
    return changed;
}

int xenfront_init(struct xenfront *f, const char *node, const char *token)
{
    snprintk(f->node, sizeof(f->node), "%s", node);
    snprintk(f->watch_token, sizeof(f->watch_token), "%s", token);
    f->watched_state[0] = '\0';
    f->phase = XENFRONT_AWAIT_INITWAIT;
    int rc = xenfront_read_backend(f);
    if (rc < 0) return rc;
    char path[XENFRONT_PATH + 16];
    snprintk(path, sizeof(path), "%s/backend", f->node);
    return xenbus_watch(path, f->watch_token);
}

/* Watch the state node of the backend we now name (a restarted driver domain is a new path). */
static void watch_backend_state(struct xenfront *f)
{
    if (!strcmp(f->watched_state, f->be_state_path)) return;
    if (f->watched_state[0]) xenbus_unwatch(f->watched_state, f->watch_token);
    if (xenbus_watch(f->be_state_path, f->watch_token) == 0)
        memcpy(f->watched_state, f->be_state_path, sizeof(f->watched_state));
    else
        f->watched_state[0] = '\0';
}

void xenfront_unwatch(struct xenfront *f)
{
    char path[XENFRONT_PATH + 16];
    snprintk(path, sizeof(path), "%s/backend", f->node);
    xenbus_unwatch(path, f->watch_token);
    if (f->watched_state[0]) xenbus_unwatch(f->watched_state, f->watch_token);
    f->watched_state[0] = '\0';
}

int xenfront_backend_state(struct xenfront *f)
{
    long st;
    if (xenbus_read_int(XBT_NIL, f->be_state_path, &st) < 0) return -1;
    return (int)st;
}

int xenfront_healthy(struct xenfront *f)
{
    char path[XENFRONT_PATH + 16], be[XENFRONT_PATH];
    snprintk(path, sizeof(path), "%s/backend", f->node);
    if (xenbus_read(XBT_NIL, path, be, sizeof(be)) < 0 || strcmp(be, f->backend) != 0) return 0;
    return xenfront_backend_state(f) == XenbusStateConnected;
}

int xenfront_event(struct xenfront *f)
{
    return xenbus_watch_pending(f->watch_token);
}

uint64_t xenfront_sleep_until(struct xenfront *f)
{
    if (xenbus_watch_fired(f->watch_token) || now_ns() >= f->next_look_ns) return 0;
    return f->next_look_ns;
}

long xenfront_backend_int(struct xenfront *f, const char *key, long dflt)
{
    char path[XENFRONT_PATH + 40];
    long v;
    snprintk(path, sizeof(path), "%s/%s", f->backend, key);
    return xenbus_read_int(XBT_NIL, path, &v) < 0 ? dflt : v;
}

void xenfront_begin(struct xenfront *f, const struct xenfront_ops *ops, void *dev, uint64_t timeout_ns)
{
    ops->teardown(dev);
    xenbus_switch_state(f->node, XenbusStateInitialising);
    f->phase = XENFRONT_AWAIT_INITWAIT;
    f->deadline_ns = now_ns() + timeout_ns;
    f->next_look_ns = 0;
}

/* Back to the start after a failed or refused attempt (the backend closed, or vanished mid-way). */
static void restart(struct xenfront *f, const struct xenfront_ops *ops, void *dev)
{
    ops->teardown(dev);
    xenbus_switch_state(f->node, XenbusStateInitialising);
    f->phase = XENFRONT_AWAIT_INITWAIT;
}

int xenfront_step(struct xenfront *f, const struct xenfront_ops *ops, void *dev)
{
    if (f->phase == XENFRONT_CONNECTED) return 0;
    uint64_t t = now_ns();
    if (!xenfront_event(f) && t < f->next_look_ns) return 0;
    f->next_look_ns = t + LOOK_NS;
    if (t >= f->deadline_ns) {
        ops->teardown(dev);
        return -XEN_ETIMEDOUT;
    }
    /* Taken away by the toolstack while we waited (xl block-detach / network-detach): nothing to wait for. */
    if (xenbus_device_detached(f->node, f->backend)) {
        ops->teardown(dev);
        return -XEN_ENODEV;
    }
    int moved = xenfront_read_backend(f);
    watch_backend_state(f);
    /* Our keys were written for the backend we named then (grants are per domain): start over for a new one. */
    if (moved == 1 && f->phase == XENFRONT_AWAIT_CONNECTED) restart(f, ops, dev);
    int st = xenfront_backend_state(f);
    if (f->phase == XENFRONT_AWAIT_INITWAIT) {
        if (st != XenbusStateInitWait) return 0;
        int rc = ops->setup(dev);
        if (rc == 0) rc = xenbus_switch_state(f->node, ops->state_after_setup);
        if (rc == -XEN_ENOMEM) {
            ops->teardown(dev);
            return rc;
        }
        if (rc < 0) {
            restart(f, ops, dev);
            return 0;
        }
        f->phase = XENFRONT_AWAIT_CONNECTED;
        f->next_look_ns = 0;   /* the backend may be Connected already */
        return 0;
    }
    /* XENFRONT_AWAIT_CONNECTED */
    if (st == XenbusStateConnected) {
        if (ops->connected(dev) < 0 || xenbus_switch_state(f->node, XenbusStateConnected) < 0) {
            restart(f, ops, dev);
            return 0;
        }
        f->phase = XENFRONT_CONNECTED;
        return 1;
    }
    /* Closing/Closed, or its node gone (its domain is going): start again with whatever comes next. */
    if (st >= XenbusStateClosing || st < 0) restart(f, ops, dev);
    return 0;
}

int xenfront_connect(struct xenfront *f, const struct xenfront_ops *ops, void *dev, uint64_t timeout_ns)
{
    xenfront_begin(f, ops, dev, timeout_ns);
    for (;;) {
        int rc = xenfront_step(f, ops, dev);
        if (rc == 1) return 0;
        if (rc < 0) return rc;
        uint64_t until = xenfront_sleep_until(f);
        if (until) kernel_wait(until);
    }
}
