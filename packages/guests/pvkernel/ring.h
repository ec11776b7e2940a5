/*
 * Shared producer/consumer rings: the semantics of Xen's public header
 * xen/include/public/io/ring.h (MIT licence, Tim Deegan and Andrew
 * Warfield 2004), re-implemented for xenbox's RISC-V PV kernel.
 *
 * Layout of the shared page (xen-protocols.md §2): req_prod @0,
 * req_event @4, rsp_prod @8, rsp_event @12, 4 private bytes @16, padding to
 * @64 where the entries start.  An entry is the union of a request and a
 * response; a ring holds as many entries as fit, rounded down to a power of
 * two, so a free-running 32-bit index masked with (size - 1) is the slot.
 *
 * Barriers are RISC-V fences (what Linux's virt_wmb/virt_rmb/virt_mb are on
 * riscv): on xenbox a backend sees our ring through a mirror that is
 * refreshed at its barriers and our notifications, so the algorithms stay
 * exactly Xen's (DESIGN.md §4).
 *
 * Built into the host-side unit test too (test/ring-test.c), where the
 * fences become the compiler's full barrier.
 */
#ifndef PVKERNEL_RING_H
#define PVKERNEL_RING_H

#include <stddef.h>
#include <stdint.h>

#if defined(__riscv)
#define xen_mb()  __asm__ __volatile__("fence rw,rw" ::: "memory")
#define xen_rmb() __asm__ __volatile__("fence r,r" ::: "memory")
#define xen_wmb() __asm__ __volatile__("fence w,w" ::: "memory")
#else
#define xen_mb()  __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define xen_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define xen_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)
#endif

typedef uint32_t RING_IDX;

/* Largest power of two <= x, for a 32-bit constant (a constant expression). */
#define __RD2(x)  (((x) & 0x00000002u) ? 0x2u : ((x) & 0x1u))
#define __RD4(x)  (((x) & 0x0000000cu) ? __RD2((x) >> 2) << 2 : __RD2(x))
#define __RD8(x)  (((x) & 0x000000f0u) ? __RD4((x) >> 4) << 4 : __RD4(x))
#define __RD16(x) (((x) & 0x0000ff00u) ? __RD8((x) >> 8) << 8 : __RD8(x))
#define __RD32(x) (((x) & 0xffff0000u) ? __RD16((x) >> 16) << 16 : __RD16(x))

/* Entries in a shared ring of `bytes` bytes, from the ring's tag. */
#define __CONST_RING_SIZE(tag, bytes) \
    __RD32((uint32_t)(((bytes) - offsetof(struct tag##_sring, ring)) / \
                      sizeof(((struct tag##_sring *)0)->ring[0])))

/* The same from a pointer to the shared ring. */
#define __RING_SIZE(s, bytes) \
    __RD32((uint32_t)(((bytes) - offsetof(__typeof__(*(s)), ring)) / sizeof((s)->ring[0])))

/*
 * DEFINE_RING_TYPES(tag, request_t, response_t) declares
 *   union tag_sring_entry, struct tag_sring (the shared page),
 *   struct tag_front_ring / tag_back_ring (each end's private indexes)
 * and the typedefs tag_sring_t, tag_front_ring_t, tag_back_ring_t.
 */
#define DEFINE_RING_TYPES(tag, req_t, rsp_t)                            \
union tag##_sring_entry {                                               \
    req_t req;                                                          \
    rsp_t rsp;                                                          \
};                                                                      \
struct tag##_sring {                                                    \
    RING_IDX req_prod, req_event;                                       \
    RING_IDX rsp_prod, rsp_event;                                       \
    union {                                                             \
        struct { uint8_t smartpoll_active; } netif;                     \
        struct { uint8_t msg; } tapif_user;                             \
        uint8_t pvt_pad[4];                                             \
    } pvt;                                                              \
    uint8_t __pad[44];                                                  \
    union tag##_sring_entry ring[1]; /* as many as fit */               \
};                                                                      \
struct tag##_front_ring {                                               \
    RING_IDX req_prod_pvt;                                              \
    RING_IDX rsp_cons;                                                  \
    unsigned int nr_ents;                                               \
    struct tag##_sring *sring;                                          \
};                                                                      \
struct tag##_back_ring {                                                \
    RING_IDX rsp_prod_pvt;                                              \
    RING_IDX req_cons;                                                  \
    unsigned int nr_ents;                                               \
    struct tag##_sring *sring;                                          \
};                                                                      \
typedef struct tag##_sring tag##_sring_t;                               \
typedef struct tag##_front_ring tag##_front_ring_t;                     \
typedef struct tag##_back_ring tag##_back_ring_t

/* Only the front end initialises the shared page. */
#define SHARED_RING_INIT(s) do {                                        \
    (s)->req_prod = (s)->rsp_prod = 0;                                  \
    (s)->req_event = (s)->rsp_event = 1;                                \
    for (unsigned int __i = 0; __i < sizeof((s)->pvt.pvt_pad); __i++)   \
        (s)->pvt.pvt_pad[__i] = 0;                                      \
    for (unsigned int __i = 0; __i < sizeof((s)->__pad); __i++)         \
        (s)->__pad[__i] = 0;                                            \
} while (0)

#define FRONT_RING_ATTACH(r, s, i, bytes) do {                          \
    (r)->req_prod_pvt = (i);                                            \
    (r)->rsp_cons = (i);                                                \
    (r)->nr_ents = __RING_SIZE(s, bytes);                               \
    (r)->sring = (s);                                                   \
} while (0)
#define FRONT_RING_INIT(r, s, bytes) FRONT_RING_ATTACH(r, s, 0, bytes)

#define BACK_RING_ATTACH(r, s, i, bytes) do {                           \
    (r)->rsp_prod_pvt = (i);                                            \
    (r)->req_cons = (i);                                                \
    (r)->nr_ents = __RING_SIZE(s, bytes);                               \
    (r)->sring = (s);                                                   \
} while (0)
#define BACK_RING_INIT(r, s, bytes) BACK_RING_ATTACH(r, s, 0, bytes)

#define RING_SIZE(r) ((r)->nr_ents)

/* Front only: slots a new request may still take. */
#define RING_FREE_REQUESTS(r) (RING_SIZE(r) - ((r)->req_prod_pvt - (r)->rsp_cons))
#define RING_FULL(r) (RING_FREE_REQUESTS(r) == 0)

/* Volatile reads of the peer's producer index: it changes under us. */
#define __RING_PEER(x) (*(volatile RING_IDX *)&(x))

#define XEN_RING_NR_UNCONSUMED_RESPONSES(r) \
    ((RING_IDX)(__RING_PEER((r)->sring->rsp_prod) - (r)->rsp_cons))

/* Back: never more than the ring can hold, whatever a lying front wrote. */
#define XEN_RING_NR_UNCONSUMED_REQUESTS(r) ({                           \
    RING_IDX __req = __RING_PEER((r)->sring->req_prod) - (r)->req_cons; \
    RING_IDX __rsp = RING_SIZE(r) - ((r)->req_cons - (r)->rsp_prod_pvt);\
    __req < __rsp ? __req : __rsp;                                      \
})

#define RING_HAS_UNCONSUMED_RESPONSES(r) XEN_RING_NR_UNCONSUMED_RESPONSES(r)
#define RING_HAS_UNCONSUMED_REQUESTS(r) XEN_RING_NR_UNCONSUMED_REQUESTS(r)

#define RING_GET_REQUEST(r, idx) (&((r)->sring->ring[(idx) & (RING_SIZE(r) - 1)].req))
#define RING_GET_RESPONSE(r, idx) (&((r)->sring->ring[(idx) & (RING_SIZE(r) - 1)].rsp))

/* Copy an entry out of the shared page once, and use only the copy (no double fetch). */
#define RING_COPY_(type, r, idx, dest) do {                             \
    *(dest) = *(volatile __typeof__(dest))RING_GET_##type(r, idx);      \
} while (0)
#define RING_COPY_REQUEST(r, idx, req) RING_COPY_(REQUEST, r, idx, req)
#define RING_COPY_RESPONSE(r, idx, rsp) RING_COPY_(RESPONSE, r, idx, rsp)

#define RING_REQUEST_CONS_OVERFLOW(r, cons) \
    ((RING_IDX)((cons) - (r)->rsp_prod_pvt) >= RING_SIZE(r))
/* A front claiming more requests than the ring holds is misbehaving. */
#define RING_REQUEST_PROD_OVERFLOW(r, prod) \
    ((RING_IDX)((prod) - (r)->rsp_prod_pvt) > RING_SIZE(r))
/* A back claiming more responses than we have requests out is misbehaving. */
#define RING_RESPONSE_PROD_OVERFLOW(r, prod) \
    ((RING_IDX)((prod) - (r)->rsp_cons) > RING_SIZE(r))

#define RING_PUSH_REQUESTS(r) do {                                      \
    xen_wmb(); /* entries before the index that publishes them */       \
    __RING_PEER((r)->sring->req_prod) = (r)->req_prod_pvt;              \
} while (0)

#define RING_PUSH_RESPONSES(r) do {                                     \
    xen_wmb();                                                          \
    __RING_PEER((r)->sring->rsp_prod) = (r)->rsp_prod_pvt;              \
} while (0)

/*
 * Publish and say whether the peer asked to be told: it wants an event
 * when its *_event index lies in (old, new], computed in wrapping 32-bit
 * arithmetic.
 */
#define RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(r, notify) do {             \
    RING_IDX __old = (r)->sring->req_prod;                              \
    RING_IDX __new = (r)->req_prod_pvt;                                 \
    xen_wmb();                                                          \
    __RING_PEER((r)->sring->req_prod) = __new;                          \
    xen_mb(); /* publish before reading req_event */                    \
    (notify) = ((RING_IDX)(__new - __RING_PEER((r)->sring->req_event)) < \
                (RING_IDX)(__new - __old));                             \
} while (0)

#define RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(r, notify) do {            \
    RING_IDX __old = (r)->sring->rsp_prod;                              \
    RING_IDX __new = (r)->rsp_prod_pvt;                                 \
    xen_wmb();                                                          \
    __RING_PEER((r)->sring->rsp_prod) = __new;                          \
    xen_mb();                                                           \
    (notify) = ((RING_IDX)(__new - __RING_PEER((r)->sring->rsp_event)) < \
                (RING_IDX)(__new - __old));                             \
} while (0)

/*
 * Before sleeping: if nothing is pending, ask for an event on the very
 * next item (event index = consumer + 1), then look again, since the peer
 * may have produced between the first look and the request.
 */
#define RING_FINAL_CHECK_FOR_REQUESTS(r, work) do {                     \
    (work) = RING_HAS_UNCONSUMED_REQUESTS(r);                           \
    if (work) break;                                                    \
    __RING_PEER((r)->sring->req_event) = (r)->req_cons + 1;             \
    xen_mb();                                                           \
    (work) = RING_HAS_UNCONSUMED_REQUESTS(r);                           \
} while (0)

#define RING_FINAL_CHECK_FOR_RESPONSES(r, work) do {                    \
    (work) = RING_HAS_UNCONSUMED_RESPONSES(r);                          \
    if (work) break;                                                    \
    __RING_PEER((r)->sring->rsp_event) = (r)->rsp_cons + 1;             \
    xen_mb();                                                           \
    (work) = RING_HAS_UNCONSUMED_RESPONSES(r);                          \
} while (0)

#endif
