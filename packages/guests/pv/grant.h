/* Grant table v1 of a PV guest: one frame placed in our RAM (XENMAPSPACE_grant_table). */
#ifndef PV_GRANT_H
#define PV_GRANT_H

#include "xen.h"

/* Query the table and place frame 0 in our RAM; 0 or -errno. */
long grant_init(void);
/* Grant `domid` access to the page at `addr` (readonly or not); the ref or -1. */
long grant_access(domid_t domid, const void *addr, int readonly);

#endif
